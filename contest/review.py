"""Review of suspicious attempts: list the flagged ones, void / restore / clear one.

A decision runs one Lua script (``leaderboard.review_scripts.REVIEW``) that moves every board and
org rollup of the user at once and appends a ``void`` event to the contest's stream; the flusher
then stores it in the ``reviews`` audit table and sets ``attempts.voided``, so the durable record
keeps the attempt, its answers and every decision about it.  The list of flagged attempts is read
from durable storage (answers flagged by the ANSWER script as faster than the human minimum),
so it trails the live contest by the flusher's backlog (normally well under a second).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contest.catalog import Catalog
from contest.contests import Contest
from contest.errors import Conflict, NotFound
from contest.play import parse_attempt_id
from contest.redis_client import ScriptRunner
from contest.storage.base import RowStream, Storage
from leaderboard import keys
from leaderboard.review_scripts import REVIEW, ReviewReply
from leaderboard.scripts import text

__all__ = ["ACTIONS", "FilteredResults", "Reviewer", "latest_decisions"]

ACTIONS = ("void", "restore", "clear")
# results export columns (contest/export.py HEADERS["results"])
_COL_ATTEMPT, _COL_VOIDED, _COL_FLAGGED = 0, 10, 11


def latest_decisions(reviews: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """attempt id -> its latest review (the one that decides; see the storage's _APPLY_REVIEWS)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(reviews, key=lambda r: (int(r["at"]), r["action"])):
        latest[row["attempt_id"]] = row
    return latest


@dataclass(slots=True)
class Reviewer:
    runner: ScriptRunner
    redis: Any
    storage: Storage
    catalog: Catalog

    async def _owner(self, contest: Contest, attempt_id: str, shard: int) -> tuple[str, str, str]:
        """(user id, org path 'a,b,c', members 'm1,m2,m3') from Redis, else the durable record."""
        cid = contest.contest_id
        uid, path, mems = await self.redis.hmget(keys.attempt(cid, attempt_id, shard), keys.ATTEMPT_USER,
                                                 keys.ATTEMPT_PATH, keys.ATTEMPT_MEMBERS)
        if uid is not None:
            return text(uid), text(path or b""), text(mems or b"")
        row = await self.storage.load_attempt(attempt_id)
        if row is None or row.get("contest_id") != cid or row.get("user_id") is None:
            raise NotFound("no such attempt")
        orgs = self.catalog.orgs
        path_ids = [p for p in (row.get("org_path") or "").split("/") if p]
        members = ",".join(str(orgs.members_total(o)) if o in orgs else "0" for o in path_ids)
        return str(row["user_id"]), ",".join(path_ids), members

    async def decide(self, contest: Contest, attempt_id: str, action: str, reason: str, by: str,
                     *, quiet: bool = False) -> dict[str, Any]:
        cid, shard = parse_attempt_id(attempt_id)
        if cid != contest.contest_id:
            raise NotFound("no such attempt in this contest")
        uid, path, mems = await self._owner(contest, attempt_id, shard)
        lone_root = self.catalog.orgs.lone_root()
        reply = ReviewReply.from_reply(await self.runner.run(
            REVIEW,
            (keys.user_contest(cid, uid, shard), keys.stats(cid, shard), keys.events(cid, shard),
             keys.board(cid, shard=shard), keys.attempt(cid, attempt_id, shard)),
            (uid, keys.contest_prefix(cid, shard), contest.ranking, action, cid, attempt_id, by, reason, path, mems,
             "1" if quiet else "0", "1" if lone_root is not None and path.split(",")[0] == lone_root else ""),
        ))
        if reply.error:
            if reply.error == "not_finished":
                raise Conflict("the attempt is still running; review it once it is finished",
                               {"state": "running"})
            raise Conflict("a voided attempt must be restored before it can be cleared",
                           {"state": "voided"})
        return {"attempt_id": attempt_id, "user_id": uid, "action": action, "changed": reply.changed,
                "board_score_before": reply.before, "board_score_after": reply.after}

    async def flagged(self, contest: Contest, org_path_prefix: str | None = None) -> list[dict[str, Any]]:
        """Finished attempts with flagged answers, with their latest review decision."""
        decisions = latest_decisions(await self.storage.load_reviews(contest.contest_id))
        out = []
        async for row in self.storage.iter_results(contest.contest_id, org_path_prefix):
            if int(row[_COL_FLAGGED] or 0) == 0:
                continue
            decision = decisions.get(row[_COL_ATTEMPT])
            out.append({"attempt_id": row[0], "user_id": row[1], "name": row[2], "org_id": row[3],
                        "score": row[4], "duration_ms": row[7], "finished_at": row[9], "question_count": row[6],
                        "voided": bool(row[_COL_VOIDED]), "flagged_answers": int(row[_COL_FLAGGED]),
                        "review": None if decision is None else {
                            "action": decision["action"], "reason": decision["reason"], "by": decision["by"],
                            "at": int(decision["at"])}})
        return out


class FilteredResults:
    """A storage view for the export whose results leave out attempts that must not win prizes:
    voided ones and flagged ones not cleared by a review.  Answers pass through unchanged."""

    def __init__(self, storage: Storage, cleared: set[str]) -> None:
        self.storage = storage
        self.cleared = cleared

    def keep(self, row: tuple[Any, ...]) -> bool:
        if row[_COL_VOIDED]:
            return False
        return int(row[_COL_FLAGGED] or 0) == 0 or row[_COL_ATTEMPT] in self.cleared

    async def iter_results(self, contest_id: str, org_path_prefix: str | None) -> RowStream:
        keep: Callable[[tuple[Any, ...]], bool] = self.keep
        async for row in self.storage.iter_results(contest_id, org_path_prefix):
            if keep(row):
                yield row

    def iter_answers(self, contest_id: str, org_path_prefix: str | None) -> RowStream:
        return self.storage.iter_answers(contest_id, org_path_prefix)

    @classmethod
    async def for_contest(cls, storage: Storage, contest_id: str) -> FilteredResults:
        decisions = latest_decisions(await storage.load_reviews(contest_id))
        return cls(storage, {aid for aid, d in decisions.items() if d["action"] in ("clear", "restore")})
