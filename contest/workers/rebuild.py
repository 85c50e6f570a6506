"""Rebuild a contest's Redis state from the database after Redis lost its data.

Boards, org rollups and counters are not recomputed by a second implementation of the rules:
finished attempts are replayed, in finish order, through the same FINISH script that built them
the first time (with the recorded finish time), so the rebuilt boards equal the lost ones.
Unfinished attempts come back with their answers and deadline; the sweeper finishes those
already past it.  Users' phone and gateway indexes and the registrant counters come back too.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import orjson
from aiohttp import web

from contest.appkeys import CATALOG, REDIS, RUNNER, STORAGE
from contest.catalog import Catalog
from contest.contests import Contest
from contest.errors import ApiError
from contest.play import question_field
from contest.review import Reviewer
from leaderboard import keys
from leaderboard.scripts import FINISH

__all__ = ["rebuild_contest", "rebuild_users", "rebuild_with"]

_PAGE = 10_000


async def rebuild_contest(app: web.Application, contest_id: str) -> dict[str, Any]:
    return await rebuild_with(app[REDIS], app[RUNNER], app[STORAGE], app[CATALOG], contest_id)


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
        pattern = keys.contest_prefix(contest.contest_id, shard).replace("{", "\\{").replace("}", "\\}") + "*"
        batch = []
        async for key in redis.scan_iter(match=pattern, count=1000):
            if key.decode().endswith(keys.SUFFIX_EVENTS) or key.decode().endswith(":dead"):
                continue  # the stream may still hold entries the database has not got yet
            batch.append(key)
            if len(batch) >= 500:
                deleted += await redis.delete(*batch)
                batch.clear()
        if batch:
            deleted += await redis.delete(*batch)
    return deleted


def _attempt_fields(row: dict[str, Any], answers: list[dict[str, Any]], catalog: Catalog,
                    challenge: bool = False) -> dict[str, Any]:
    paper = orjson.loads(row["paper"]) if row.get("paper") else []
    path = [p for p in (row.get("org_path") or "").split("/") if p]
    orgs = catalog.orgs
    fields: dict[str, Any] = {
        "uid": row["user_id"], "st": row["started_at"], "dl": row["deadline_at"], "day": row["day"],
        "fin": 0, "score": 0, "cc": 0, "n": 0, "la": row["started_at"], "streak": 0, "qc": len(paper),
        "path": ",".join(path), "mem": ",".join(str(orgs.members_total(o)) if o in orgs else "0" for o in path),
        "org": row.get("org_id") or "", "paper": orjson.dumps(paper),
    }
    for i, (qid, perm) in enumerate(paper):
        q = catalog.bank.get(qid)
        if q is None:
            continue
        fields[f"q{i}"] = question_field(q, tuple(int(c) for c in perm))
    score = cc = 0
    last = int(row["started_at"])
    for a in sorted(answers, key=lambda a: (int(a["answered_at"]), int(a["idx"]))):
        ok = 1 if a["correct"] else 0
        score += int(a["points_awarded"])
        fields[f"a{a['idx']}"] = f"{a['choice'] or ''}|{ok}|{a['points_awarded']}|{a['answered_at']}|" \
                                 f"{1 if a.get('flagged') else 0}|{score}"
        cc += ok
        last = max(last, int(a["answered_at"]))
    fields.update(score=score, cc=cc, n=len(answers), la=last)
    if challenge:
        # the question being served, as ANSWER left it: the next one after right answers, else the last
        n = len(answers)
        fields["cur"] = n if cc == n and n < len(paper) else max(n - 1, 0)
    return fields


def _count_answers(answers: list[dict[str, Any]], counters: dict[str, int], qstats: dict[str, int],
                   timeline: dict[str, int]) -> None:
    counters["attempts_started"] += 1
    for a in answers:
        counters["answers"] += 1
        counters["correct"] += 1 if a["correct"] else 0
        counters["flagged"] += 1 if a.get("flagged") else 0
        qstats[f"{a['question_id']}:n"] += 1
        if a["correct"]:
            qstats[f"{a['question_id']}:c"] += 1
        timeline[f"a:{int(a['answered_at']) // 60000}"] += 1


async def _replay_voids(redis: Any, runner: Any, storage: Any, catalog: Catalog, contest: Contest,
                        finished: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Review decisions are part of the record: a voided attempt stays off the boards."""
    voided = [row for row in finished if row.get("voided")]
    reviewer = Reviewer(runner, redis, storage, catalog)
    for row in voided:
        await reviewer.decide(contest, row["attempt_id"], "void", "", "rebuild", quiet=True)
    return voided


async def rebuild_with(redis: Any, runner: Any, storage: Any, catalog: Catalog, contest_id: str) -> dict[str, Any]:
    started = time.monotonic()
    await catalog.bootstrap()
    contest = catalog.contests.get(contest_id)
    if contest is None:
        raise ApiError(404, "not_found", f"no contest {contest_id!r}")
    names = await rebuild_users(redis, storage, catalog)
    deleted = await _clear(redis, contest)
    answers_by_attempt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    async for answer in storage.load_answers(contest_id):
        answers_by_attempt[answer["attempt_id"]].append(answer)
    attempts = [row async for row in storage.load_attempts(contest_id)]
    counters: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    qstats: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    timeline: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    restored = open_attempts = 0
    for row in attempts:
        if row.get("started_at") is None or not row.get("paper"):
            continue  # a finish whose start has not reached the database: nothing to rebuild from
        aid = row["attempt_id"]
        shard = 0 if aid.count(".") < 2 else int(aid.split(".")[1])
        uid = str(row["user_id"])
        answers = answers_by_attempt.get(aid, [])
        fields = _attempt_fields(row, answers, catalog, contest.mode == "challenge")
        ukey = keys.user_contest(contest_id, uid, shard)
        deadline = int(row["deadline_at"])
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.attempt(contest_id, aid, shard), mapping=fields)
            pipe.pexpireat(keys.attempt(contest_id, aid, shard), deadline + 86_400_000)
            pipe.hincrby(ukey, "n", 1)
            pipe.hincrby(ukey, f"n:{row['day']}", 1)
            pipe.hset(keys.names(contest_id, shard), uid, f"{names.get(uid, '')}\t{row.get('org_id') or ''}")
            if row.get("finished_at") is None:
                pipe.hset(ukey, "active", aid)
                pipe.zadd(keys.deadlines(contest_id, shard), {aid: deadline})
                open_attempts += 1
            await pipe.execute()
        _count_answers(answers, counters[shard], qstats[shard], timeline[shard])
        restored += 1
    finished = sorted((r for r in attempts if r.get("finished_at") is not None and r.get("paper")),
                      key=lambda r: (int(r["finished_at"]), r["attempt_id"]))
    for row in finished:
        aid = row["attempt_id"]
        shard = 0 if aid.count(".") < 2 else int(aid.split(".")[1])
        await runner.run(
            FINISH,
            (keys.attempt(contest_id, aid, shard), keys.user_contest(contest_id, str(row["user_id"]), shard),
             keys.stats(contest_id, shard), keys.events(contest_id, shard), keys.deadlines(contest_id, shard),
             keys.timeline(contest_id, "", shard), keys.board(contest_id, shard=shard), keys.names(contest_id, shard)),
            (str(row["user_id"]), keys.contest_prefix(contest_id, shard), contest.ranking, contest.counted_per_day,
             1 if row.get("auto_finished") else 0, contest_id, aid, int(row["finished_at"])),
        )
    voided = await _replay_voids(redis, runner, storage, catalog, contest, finished)
    async with redis.pipeline(transaction=False) as pipe:
        for shard, values in counters.items():
            for name, value in values.items():
                pipe.hincrby(keys.stats(contest_id, shard), name, value)
        for shard, values in qstats.items():
            if values:  # attempts without a single answer leave an empty mapping, which HSET refuses
                pipe.hset(keys.qstats(contest_id, shard), mapping=dict(values))
        for shard, values in timeline.items():
            for name, value in values.items():
                pipe.hincrby(keys.timeline(contest_id, "", shard), name, value)
        await pipe.execute()
    return {"contest_id": contest_id, "attempts": restored, "finished": len(finished), "open": open_attempts,
            "voided": len(voided),
            "users": len(names), "deleted_keys": deleted, "seconds": round(time.monotonic() - started, 3)}
