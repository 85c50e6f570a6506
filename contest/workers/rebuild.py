"""Rebuild a contest's Redis state from the database after Redis lost its data.

Boards, org rollups and counters are not recomputed by a second implementation of the rules:
finished attempts are replayed, in finish order, through the same FINISH script that built them
the first time (with the recorded finish time), so the rebuilt boards equal the lost ones.
Unfinished attempts come back with their answers and deadline; the sweeper finishes those
already past it.  Users' phone and gateway indexes and the registrant counters come back too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import defaultdict
from typing import Any

import orjson

from contest.catalog import Catalog
from contest.contests import Contest
from contest.errors import NotFound
from contest.play import question_field
from contest.review import Reviewer
from leaderboard import keys
from leaderboard.scripts import FINISH

__all__ = ["rebuild_users", "rebuild_with"]

_PAGE = 10_000
_BATCH = 1_000  # attempts restored per pipeline, finishes replayed per wave


async def rebuild_users(redis: Any, storage: Any, catalog: Catalog) -> dict[str, str]:
    """Phone/ext indexes, the id counter and registrants per org; returns user id -> name."""
    names: dict[str, str] = {}
    registrants: dict[str, int] = defaultdict(int)
    top = 0
    after = None
    while True:
        rows = await storage.load_users(after, _PAGE)
        if not rows:
            break
        async with redis.pipeline(transaction=False) as pipe:
            for row in rows:
                uid = str(row["user_id"])
                names[uid] = row.get("name") or ""
                if row.get("phone"):
                    pipe.hset(keys.user_phones(), row["phone"], uid)
                    # what an SMS sign-in puts in the token (leaderboard.signin_scripts.USER_PROFILE)
                    pipe.hset(keys.user_profiles(), uid, f"{row.get('name') or ''}\t{row.get('org_id') or ''}")
                if row.get("ext_id"):
                    pipe.hset(keys.user_ext(), row["ext_id"], uid)
                if uid.isdigit():
                    top = max(top, int(uid))
                registrants[""] += 1
                org = row.get("org_id") or ""
                for ancestor in catalog.orgs.path(org) if org in catalog.orgs else ():
                    registrants[ancestor] += 1
            await pipe.execute()
        after = str(rows[-1]["user_id"])
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(keys.user_registrations())
        if registrants:
            pipe.hset(keys.user_registrations(), mapping=dict(registrants))
        await pipe.execute()
    # Never hand out an id the database already has, nor lower a counter that is ahead of it.
    current = int(await redis.get(keys.user_seq()) or 0)
    if current < top:
        await redis.set(keys.user_seq(), top)
    return names


async def _clear(redis: Any, contest: Contest) -> int:
    deleted = 0
    for shard in range(contest.shards):
        pattern = keys.every_key_under(keys.contest_prefix(contest.contest_id, shard))
        batch = []
        async for key in redis.scan_iter(match=pattern, count=1000):
            name = key.decode()
            if name.endswith((keys.SUFFIX_EVENTS, ":dead", keys.SUFFIX_LEASES)):
                continue  # the stream may hold entries the database has not got yet, its leases say which
            batch.append(key)
            if len(batch) >= 500:
                deleted += await redis.delete(*batch)
                batch.clear()
        if batch:
            deleted += await redis.delete(*batch)
    return deleted


def _daily_expiry_ms(contest: Contest, day: str, keep_s: int) -> int | None:
    """When the daily boards of ``day`` expire: the next midnight in the contest's timezone plus the
    keep period, as the START script computes it (None: they never expire)."""
    if keep_s <= 0:
        return None
    midnight = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1), dt.time(0), tzinfo=contest.tz)
    return int(midnight.timestamp() * 1000) + keep_s * 1000


def _attempt_fields(row: dict[str, Any], answers: list[dict[str, Any]], catalog: Catalog,
                    challenge: bool = False, daily_expiry: int | None = None) -> dict[str, Any]:
    paper = orjson.loads(row["paper"]) if row.get("paper") else []
    path = [p for p in (row.get("org_path") or "").split("/") if p]
    orgs = catalog.orgs
    fields: dict[str, Any] = {
        keys.ATTEMPT_USER: row["user_id"], keys.ATTEMPT_STARTED: row["started_at"],
        keys.ATTEMPT_DEADLINE: row["deadline_at"], keys.ATTEMPT_DAY: row["day"], keys.ATTEMPT_FINISHED: 0,
        keys.ATTEMPT_STREAK: 0, keys.ATTEMPT_QUESTIONS: len(paper), keys.ATTEMPT_PATH: ",".join(path),
        keys.ATTEMPT_MEMBERS: ",".join(str(orgs.members_total(o)) if o in orgs else "0" for o in path),
        keys.ATTEMPT_ORG: row.get("org_id") or "", keys.ATTEMPT_PAPER: orjson.dumps(paper),
    }
    # the layout START writes (leaderboard.keys.board): FINISH's replay then rebuilds exactly it, a
    # day past its expiry included (its boards are created and expire at once)
    if daily_expiry is not None:
        fields[keys.ATTEMPT_DAILY_EXPIRY] = daily_expiry
    if path and path[0] == orgs.lone_root():
        fields[keys.ATTEMPT_LONE_ROOT] = 1
    for i, (qid, perm) in enumerate(paper):
        q = catalog.bank.get(qid)
        if q is None:
            continue
        fields[f"{keys.ATTEMPT_QUESTION}{i}"] = question_field(q, tuple(int(c) for c in perm))
    score = cc = 0
    last = int(row["started_at"])
    for a in sorted(answers, key=lambda a: (int(a["answered_at"]), int(a["idx"]))):
        ok = 1 if a["correct"] else 0
        score += int(a["points_awarded"])
        fields[f"{keys.ATTEMPT_ANSWER}{a['idx']}"] = (f"{a['choice'] or ''}|{ok}|{a['points_awarded']}|"
                                                      f"{a['answered_at']}|{1 if a.get('flagged') else 0}|{score}")
        cc += ok
        last = max(last, int(a["answered_at"]))
    fields.update({keys.ATTEMPT_SCORE: score, keys.ATTEMPT_CORRECT: cc, keys.ATTEMPT_ANSWERED: len(answers),
                   keys.ATTEMPT_LAST_AT: last})
    if challenge:
        # the question being served, as ANSWER left it: the next one after right answers, else the last
        n = len(answers)
        fields[keys.ATTEMPT_CURRENT] = n if cc == n and n < len(paper) else max(n - 1, 0)
    return fields


def _count_answers(answers: list[dict[str, Any]], counters: dict[str, int], qstats: dict[str, int],
                   timeline: dict[str, int]) -> None:
    counters[keys.STATS_STARTED] += 1
    for a in answers:
        counters[keys.STATS_ANSWERS] += 1
        counters[keys.STATS_CORRECT] += 1 if a["correct"] else 0
        counters[keys.STATS_FLAGGED] += 1 if a.get("flagged") else 0
        qstats[a["question_id"] + keys.QSTATS_ANSWERS] += 1
        if a["correct"]:
            qstats[a["question_id"] + keys.QSTATS_CORRECT] += 1
        timeline[f"{keys.TIMELINE_ANSWERS}{int(a['answered_at']) // 60000}"] += 1


async def _replay_voids(redis: Any, runner: Any, storage: Any, catalog: Catalog, contest: Contest,
                        finished: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Review decisions are part of the record: a voided attempt stays off the boards."""
    voided = [row for row in finished if row.get("voided")]
    reviewer = Reviewer(runner, redis, storage, catalog)
    for row in voided:
        await reviewer.decide(contest, row["attempt_id"], "void", "", "rebuild", quiet=True)
    return voided


async def _replay_finishes(runner: Any, contest: Contest, rows: list[dict[str, Any]]) -> None:
    contest_id = contest.contest_id
    calls = []
    for row in rows:
        aid = row["attempt_id"]
        shard = 0 if aid.count(".") < 2 else int(aid.split(".")[1])
        calls.append(runner.run(
            FINISH,
            (keys.attempt(contest_id, aid, shard), keys.user_contest(contest_id, str(row["user_id"]), shard),
             keys.stats(contest_id, shard), keys.events(contest_id, shard), keys.deadlines(contest_id, shard),
             keys.timeline(contest_id, "", shard), keys.board(contest_id, shard=shard), keys.names(contest_id, shard)),
            (str(row["user_id"]), keys.contest_prefix(contest_id, shard), contest.ranking, contest.counted_per_day,
             1 if row.get("auto_finished") else 0, contest_id, aid, int(row["finished_at"])),
        ))
    await asyncio.gather(*calls)


class _Restore:
    """Attempt hashes, member counters and names back from the database, one pipeline per
    ``_BATCH`` attempts: a round trip per attempt made a province's million attempts take most of
    an hour (quiz rehearse).  The counters are summed here and written once at the end."""

    def __init__(self, redis: Any, catalog: Catalog, contest: Contest, names: dict[str, str],
                 daily_board_keep_s: int) -> None:
        self.redis, self.catalog, self.contest, self.names = redis, catalog, contest, names
        self.daily_board_keep_s = daily_board_keep_s
        self.attempts: dict[str, dict[str, Any]] = {}
        self.batch: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        self.counters: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.qstats: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.timeline: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.restored = self.open = 0

    async def run(self, storage: Any) -> None:
        cid = self.contest.contest_id
        self.attempts = {row["attempt_id"]: row async for row in storage.load_attempts(cid)}
        # Answers come grouped by attempt (the storages order them by attempt id), so each attempt
        # is restored as its answers end: the attempts are held in memory, never every answer.
        seen: set[str] = set()
        current: str | None = None
        group: list[dict[str, Any]] = []
        async for answer in storage.load_answers(cid):
            if answer["attempt_id"] != current:
                if current is not None:
                    await self.take(current, group)
                current, group = answer["attempt_id"], []
                if current in seen:
                    raise RuntimeError(f"the answers of {current} came apart: the storage must order them by attempt")
                seen.add(current)
            group.append(answer)
        if current is not None:
            await self.take(current, group)
        for aid in self.attempts:
            if aid not in seen:
                await self.take(aid, [])
        await self.flush()

    async def take(self, aid: str, answers: list[dict[str, Any]]) -> None:
        row = self.attempts.get(aid)
        if row is None or row.get("started_at") is None or not row.get("paper"):
            return  # a finish whose start has not reached the database: nothing to rebuild from
        self.batch.append((row, answers))
        if len(self.batch) >= _BATCH:
            await self.flush()

    async def flush(self) -> None:
        cid = self.contest.contest_id
        async with self.redis.pipeline(transaction=False) as pipe:
            for row, answers in self.batch:
                aid = row["attempt_id"]
                shard = 0 if aid.count(".") < 2 else int(aid.split(".")[1])
                uid = str(row["user_id"])
                fields = _attempt_fields(row, answers, self.catalog, self.contest.mode == "challenge",
                                         _daily_expiry_ms(self.contest, row["day"], self.daily_board_keep_s))
                ukey = keys.user_contest(cid, uid, shard)
                deadline = int(row["deadline_at"])
                pipe.hset(keys.attempt(cid, aid, shard), mapping=fields)
                pipe.pexpireat(keys.attempt(cid, aid, shard), deadline + 86_400_000)
                pipe.hincrby(ukey, keys.USER_STARTS, 1)
                pipe.hincrby(ukey, keys.USER_STARTS_ON + row["day"], 1)
                pipe.hset(keys.names(cid, shard), uid, f"{self.names.get(uid, '')}\t{row.get('org_id') or ''}")
                if row.get("finished_at") is None:
                    pipe.hset(ukey, keys.USER_ACTIVE, aid)
                    pipe.zadd(keys.deadlines(cid, shard), {aid: deadline})
                    self.open += 1
                _count_answers(answers, self.counters[shard], self.qstats[shard], self.timeline[shard])
                self.restored += 1
            if self.batch:
                await pipe.execute()
        self.batch.clear()

    async def write_counters(self) -> None:
        cid = self.contest.contest_id
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard, values in self.counters.items():
                for name, value in values.items():
                    if value:  # a counter the live path never touched (no flagged answer) stays absent
                        pipe.hincrby(keys.stats(cid, shard), name, value)
            for shard, values in self.qstats.items():
                if values:  # attempts without a single answer leave an empty mapping, which HSET refuses
                    pipe.hset(keys.qstats(cid, shard), mapping=dict(values))
            for shard, values in self.timeline.items():
                for name, value in values.items():
                    pipe.hincrby(keys.timeline(cid, "", shard), name, value)
            await pipe.execute()


async def _replay_all_finishes(runner: Any, contest: Contest, finished: list[dict[str, Any]]) -> None:
    """FINISH replayed in finish order, in waves of calls sent together (coalesced into few
    writes) instead of a round trip each; a member's attempts never share a wave, so the order of
    one member's finishes holds whatever runner carries them."""
    wave: list[dict[str, Any]] = []
    in_wave: set[str] = set()
    for row in finished:
        uid = str(row["user_id"])
        if uid in in_wave or len(wave) >= _BATCH:
            await _replay_finishes(runner, contest, wave)
            wave, in_wave = [], set()
        wave.append(row)
        in_wave.add(uid)
    await _replay_finishes(runner, contest, wave)


async def rebuild_with(redis: Any, runner: Any, storage: Any, catalog: Catalog, contest_id: str, *,
                       daily_board_keep_s: int = 2 * 86_400) -> dict[str, Any]:
    started = time.monotonic()
    await catalog.bootstrap()
    contest = catalog.contests.get(contest_id)
    if contest is None:
        raise NotFound(f"no contest {contest_id!r}")
    names = await rebuild_users(redis, storage, catalog)
    deleted = await _clear(redis, contest)
    restore = _Restore(redis, catalog, contest, names, daily_board_keep_s)
    await restore.run(storage)
    finished = sorted((r for r in restore.attempts.values() if r.get("finished_at") is not None and r.get("paper")),
                      key=lambda r: (int(r["finished_at"]), r["attempt_id"]))
    await _replay_all_finishes(runner, contest, finished)
    voided = await _replay_voids(redis, runner, storage, catalog, contest, finished)
    await restore.write_counters()
    return {"contest_id": contest_id, "attempts": restore.restored, "finished": len(finished), "open": restore.open,
            "voided": len(voided),
            "users": len(names), "deleted_keys": deleted, "seconds": round(time.monotonic() - started, 3)}
