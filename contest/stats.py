"""Contest counters: participants, attempts, answers, accuracy, answers per second, timelines."""

from __future__ import annotations

import time
from typing import Any

from leaderboard import keys

__all__ = ["read_counters", "read_question_stats", "read_timeline"]

_RATE_WINDOW_S = 5


def _i(value: Any) -> int:
    return int(value) if value else 0


async def read_counters(redis: Any, contest_id: str, shards: int = 1) -> dict[str, Any]:
    """The contest-wide counters (summed over shards), with answers/s over the last 5 full seconds."""
    now_s = int(time.time())
    seconds = [f"s:{now_s - k}" for k in range(1, _RATE_WINDOW_S + 1)]
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            pipe.hgetall(keys.stats(contest_id, shard))
            pipe.hmget(keys.timeline(contest_id, "", shard), seconds)
        replies = await pipe.execute()
    totals: dict[str, int] = {}
    recent = 0
    for shard in range(shards):
        for field, value in replies[2 * shard].items():
            name = field.decode()
            totals[name] = totals.get(name, 0) + int(value)
        recent += sum(_i(v) for v in replies[2 * shard + 1])
    answers = totals.get("answers", 0)
    return {
        "participants": totals.get("participants", 0),
        "attempts_started": totals.get("attempts_started", 0),
        "attempts_finished": totals.get("attempts_finished", 0),
        "answers": answers,
        "correct": totals.get("correct", 0),
        "flagged_answers": totals.get("flagged", 0),
        "voided_attempts": totals.get("voided", 0),  # by review (contest/review.py)
        "accuracy": round(totals.get("correct", 0) / answers, 4) if answers else 0.0,
        "answers_per_s": round(recent / _RATE_WINDOW_S, 1),
    }


async def read_question_stats(redis: Any, contest_id: str, shards: int = 1) -> list[dict[str, Any]]:
    merged: dict[str, list[int]] = {}
    for shard in range(shards):
        for field, value in (await redis.hgetall(keys.qstats(contest_id, shard))).items():
            qid, _, kind = field.decode().rpartition(":")
            counts = merged.setdefault(qid, [0, 0])
            counts[0 if kind == "n" else 1] += int(value)
    return [
        {"question_id": qid, "answers": n, "correct": c, "accuracy": round(c / n, 4) if n else 0.0}
        for qid, (n, c) in sorted(merged.items())
    ]


async def read_timeline(redis: Any, contest_id: str, shards: int = 1) -> list[dict[str, int]]:
    """Answers and finished attempts per minute."""
    points: dict[int, dict[str, int]] = {}
    for shard in range(shards):
        for field, value in (await redis.hgetall(keys.timeline(contest_id, "", shard))).items():
            kind, _, stamp = field.decode().partition(":")
            if kind not in ("a", "f"):
                continue
            point = points.setdefault(int(stamp), {"answers": 0, "attempts_finished": 0})
            point["answers" if kind == "a" else "attempts_finished"] += int(value)
    return [{"at": minute * 60_000, **point} for minute, point in sorted(points.items())]
