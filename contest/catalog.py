"""Per-process caches of the admin data: org tree, question bank, contests.

The database is the record; Redis holds versioned snapshots (msgpack) so every worker process
loads them without touching the database; each process keeps the decoded form in memory and
checks the version counters once a second (one pipelined round trip for all three).  A worker
that changes something installs the new form at once, so a client never reads its own write stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from contest.contests import Contest
from contest.orgtree import Org, OrgTree
from contest.storage.base import Storage
from leaderboard import keys
from question_bank import Question, QuestionBank
from question_bank.versions import latest_version, plan_delete, plan_upsert, retire_superseded

__all__ = ["Catalog"]

log = logging.getLogger(__name__)


def _int(value: bytes | None) -> int:
    return int(value) if value else 0


class Catalog:
    """The org tree, the bank and the contests of this process, kept in step with Redis."""

    def __init__(self, redis: Any, storage: Storage) -> None:
        self.redis = redis
        self.storage = storage
        self.orgs = OrgTree()
        self.bank = QuestionBank()
        self.contests: dict[str, Contest] = {}
        self.contests_version = -1
        self._lock = asyncio.Lock()

    # ---- loading -------------------------------------------------------------------------
    async def bootstrap(self) -> None:
        """Make sure Redis has snapshots (seeding them from the database after a Redis loss), then load."""
        async with self._lock:
            orgs_v, bank_v, contests_v = await self._versions()
            if not orgs_v:
                rows = await self.storage.load_orgs()
                if rows:
                    await self._publish_orgs(OrgTree.from_orgs(_orgs(rows)), seed=True)
            if not bank_v:
                rows = await self.storage.load_questions()
                if rows:
                    # the database keeps no retired flag: older versions of a question are retired
                    bank = QuestionBank.from_questions(retire_superseded(_questions(rows)))
                    await self._publish_bank(bank, seed=True)
            if not contests_v:
                for row in await self.storage.load_contests():
                    config = dict(row["config"])
                    config["status"] = row["status"]
                    await self._publish_contest(config, seed=True)
        await self.refresh()

    async def _versions(self) -> tuple[int, int, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.orgs_version())
            pipe.get(keys.bank_version())
            pipe.get(keys.contests_version())
            orgs_v, bank_v, contests_v = await pipe.execute()
        return _int(orgs_v), _int(bank_v), _int(contests_v)

    async def refresh(self) -> None:
        """Reload whatever changed since the last look."""
        orgs_v, bank_v, contests_v = await self._versions()
        if orgs_v != self.orgs.version:
            data = await self.redis.get(keys.orgs_snapshot())
            if data:
                self.orgs = await asyncio.to_thread(_load_orgs, data)
        if bank_v != self.bank.version:
            data = await self.redis.get(keys.bank_snapshot())
            if data:
                self.bank = await asyncio.to_thread(QuestionBank.from_snapshot, data)
        if contests_v != self.contests_version:
            raw = await self.redis.hgetall(keys.contests_snapshot())
            contests = {}
            for cid, blob in raw.items():
                config = orjson.loads(blob)
                contests[cid.decode()] = Contest.from_config(config)
            self.contests = contests
            self.contests_version = contests_v

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Background task: follow changes made by other processes."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                return
            try:
                await self.refresh()
            except Exception as exc:  # keep serving the cached copy while Redis is away
                log.debug("catalog refresh failed: %s", exc)

    # ---- publishing (admin writes) --------------------------------------------------------
    async def _publish_orgs(self, tree: OrgTree, *, seed: bool = False) -> OrgTree:
        version = await self.redis.incr(keys.orgs_version()) if not seed else 1
        tree, snapshot = await asyncio.to_thread(_versioned_orgs, tree, version)
        await self._store_snapshot(keys.orgs_snapshot(), snapshot, keys.orgs_version() if seed else None, version)
        return tree

    async def _publish_bank(self, bank: QuestionBank, *, seed: bool = False) -> QuestionBank:
        version = await self.redis.incr(keys.bank_version()) if not seed else 1
        bank = QuestionBank.from_questions(bank.questions(), version=version)
        snapshot = await asyncio.to_thread(bank.to_snapshot)
        await self._store_snapshot(keys.bank_snapshot(), snapshot, keys.bank_version() if seed else None, version)
        return bank

    async def _store_snapshot(self, snapshot_key: str, snapshot: bytes, version_key: str | None, version: int) -> None:
        """Publish a snapshot; a seed (the first one) also sets the version counter the next
        publication increments."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(snapshot_key, snapshot)
            if version_key is not None:
                pipe.set(version_key, version)
            await pipe.execute()

    async def _publish_contest(self, config: dict[str, Any], *, seed: bool = False) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.contests_snapshot(), config["contest_id"], orjson.dumps(config))
            pipe.incr(keys.contests_version())
            if config.get("status") == "published":
                pipe.sadd(keys.streams_registry(), *self.streams_of(config))
            await pipe.execute()

    @staticmethod
    def streams_of(config: dict[str, Any]) -> list[str]:
        shards = int(config.get("shards") or 1)
        return [keys.events(config["contest_id"], shard) for shard in range(shards)]

    async def install_orgs(self, new_orgs: list[Org]) -> OrgTree:
        """Upsert orgs: database first (the record), then the Redis snapshot, then this process."""
        async with self._lock:
            await self.storage.save_orgs([o.to_dict() for o in new_orgs])
            merged = await asyncio.to_thread(self.orgs.merged, new_orgs)
            self.orgs = await self._publish_orgs(merged)
            return self.orgs

    async def drawn(self) -> set[str]:
        """Ids of questions ever drawn into an attempt (noted at attempt start)."""
        return {m.decode() if isinstance(m, bytes) else str(m) for m in await self.redis.smembers(keys.bank_drawn())}

    async def install_questions(self, questions: list[Question]) -> tuple[int, int]:
        """Upsert an import: (new questions, questions already in the bank).  A drawn question
        that a row changes gets a new version and is retired (question_bank.versions)."""
        async with self._lock:
            await self.refresh()
            imported = sum(1 for q in questions if latest_version(self.bank, q.id) is None)
            await self._install(plan_upsert(self.bank, questions, await self.drawn()), ())
            return imported, len(questions) - imported

    async def edit_question(self, question: Question) -> Question:
        """The question editor's save: the version now current for ``question.id``."""
        async with self._lock:
            await self.refresh()
            await self._install(plan_upsert(self.bank, [question], await self.drawn()), ())
            current = latest_version(self.bank, question.id)
            assert current is not None
            return current

    async def delete_question(self, qid: str) -> str:
        """'retired' (it was drawn: kept, never drawn again) or 'deleted' (removed from the bank;
        its database row stays, as the database keeps every question ever served)."""
        async with self._lock:
            await self.refresh()
            retire, remove = plan_delete(self.bank, qid, await self.drawn())
            await self._install(retire, remove)
            return "deleted" if remove else "retired"

    async def _install(self, upserts: list[Question], removals: tuple[str, ...] | list[str]) -> None:
        if not upserts and not removals:
            return
        if upserts:
            await self.storage.save_questions([_question_row(q) for q in upserts])
        merged, _, _ = await asyncio.to_thread(self.bank.merged, upserts)
        if removals:
            merged = QuestionBank.from_questions([q for q in merged.questions() if q.id not in removals],
                                                 version=merged.version)
        self.bank = await self._publish_bank(merged)

    async def install_contest(self, config: dict[str, Any]) -> Contest:
        await self.storage.save_contest(config["contest_id"], config, config.get("status", "draft"))
        await self._publish_contest(config)
        contest = Contest.from_config(config)
        self.contests = {**self.contests, contest.contest_id: contest}
        return contest


def _load_orgs(snapshot: bytes) -> OrgTree:
    """A tree from its snapshot with its search index built: a thread's work for a province's tree
    (loadtest/README.md, "Figures behind the code")."""
    tree = OrgTree.from_snapshot(snapshot)
    tree.search_index()
    return tree


def _versioned_orgs(tree: OrgTree, version: int) -> tuple[OrgTree, bytes]:
    """``tree`` as ``version``, with its snapshot and search index (a thread's work, as above)."""
    tree = OrgTree.from_orgs(list(tree), version=version)
    tree.search_index()
    return tree, tree.to_snapshot()


def _orgs(rows: list[dict[str, Any]]) -> list[Org]:
    return [Org(r["org_id"], r.get("parent_id") or None, r["name"], int(r["level"]), int(r.get("members") or 0),
                bool(r.get("accepts_members")))
            for r in rows]


def _questions(rows: list[dict[str, Any]]) -> list[Question]:
    return [
        Question(r["id"], r["type"], r["stem"], tuple(r["options"]), r["answer"], r.get("category"),
                 r.get("difficulty"), int(r.get("points") or 10), r.get("explanation") or "")
        for r in rows
    ]


def _question_row(question: Question) -> dict[str, Any]:
    return {
        "id": question.id, "type": question.type, "stem": question.stem, "options": list(question.options),
        "answer": question.answer, "category": question.category, "difficulty": question.difficulty,
        "points": question.points, "explanation": question.explanation,
    }
