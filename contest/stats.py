"""Contest counters: participants, attempts, answers, accuracy, answers per second, timelines."""

from __future__ import annotations

import time
from typing import Any

from contest.storage.base import Storage
from leaderboard import keys

__all__ = ["read_counters", "read_question_stats", "read_subtree", "read_timeline"]

_RATE_WINDOW_S = 5


def _int_or_zero(value: Any) -> int:
    return int(value) if value else 0


async def read_counters(redis: Any, contest_id: str, shards: int = 1) -> dict[str, Any]:
    """The contest-wide counters (summed over shards), with answers/s over the last 5 full seconds."""
    now_s = int(time.time())
    seconds = [f"{keys.TIMELINE_PER_SECOND}{now_s - k}" for k in range(1, _RATE_WINDOW_S + 1)]
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
        recent += sum(_int_or_zero(v) for v in replies[2 * shard + 1])
    answers = totals.get(keys.STATS_ANSWERS, 0)
    correct = totals.get(keys.STATS_CORRECT, 0)
    return {
        "participants": totals.get(keys.STATS_PARTICIPANTS, 0),
        "attempts_started": totals.get(keys.STATS_STARTED, 0),
        "attempts_finished": totals.get(keys.STATS_FINISHED, 0),
        "answers": answers,
        "correct": correct,
        "flagged_answers": totals.get(keys.STATS_FLAGGED, 0),
        "voided_attempts": totals.get(keys.STATS_VOIDED, 0),  # by review (contest/review.py)
        "accuracy": round(correct / answers, 4) if answers else 0.0,
        "answers_per_s": round(recent / _RATE_WINDOW_S, 1),
    }


async def read_question_stats(redis: Any, contest_id: str, shards: int = 1) -> list[dict[str, Any]]:
    merged: dict[str, list[int]] = {}
    for shard in range(shards):
        for field, value in (await redis.hgetall(keys.qstats(contest_id, shard))).items():
            name = field.decode()
            # '<question id>' + QSTATS_ANSWERS or QSTATS_CORRECT (a question id may hold ':')
            answered = name.endswith(keys.QSTATS_ANSWERS)
            qid = name[:-len(keys.QSTATS_ANSWERS if answered else keys.QSTATS_CORRECT)]
            counts = merged.setdefault(qid, [0, 0])
            counts[0 if answered else 1] += int(value)
    return [
        {"question_id": qid, "answers": n, "correct": c, "accuracy": round(c / n, 4) if n else 0.0}
        for qid, (n, c) in sorted(merged.items())
    ]


async def read_timeline(redis: Any, contest_id: str, shards: int = 1) -> list[dict[str, int]]:
    """Answers and finished attempts per minute."""
    points: dict[int, dict[str, int]] = {}
    for shard in range(shards):
        for field, value in (await redis.hgetall(keys.timeline(contest_id, "", shard))).items():
            name = field.decode()
            if name.startswith(keys.TIMELINE_ANSWERS):
                what, stamp = "answers", name[len(keys.TIMELINE_ANSWERS):]
            elif name.startswith(keys.TIMELINE_FINISHES):
                what, stamp = "attempts_finished", name[len(keys.TIMELINE_FINISHES):]
            else:
                continue  # per-second buckets: read_counters' answers/s
            points.setdefault(int(stamp), {"answers": 0, "attempts_finished": 0})[what] += int(value)
    return [{"at": minute * 60_000, **point} for minute, point in sorted(points.items())]


# (contest, org path prefix) -> (monotonic time, figures): a dashboard polls every few seconds
_SUBTREE_CACHE: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
_SUBTREE_TTL_S = 3.0


async def read_subtree(storage: Storage, contest_id: str, org_path_prefix: str) -> dict[str, Any]:
    """Answers, accuracy, flagged answers, per-question figures and the per-minute timeline of one
    org subtree, from durable storage (the Redis counters are contest-wide only).

    The flusher keeps the database well under a second behind; the database aggregates
    (``Storage.subtree_figures``: four GROUP BY queries over the subtree's path range), and the
    figures are cached for 3 s per subtree so many open dashboards cost one read.
    """
    key = (contest_id, org_path_prefix)
    now = time.monotonic()
    cached = _SUBTREE_CACHE.get(key)
    if cached is not None and now - cached[0] < _SUBTREE_TTL_S:
        return cached[1]
    since_ms = (int(time.time()) - _RATE_WINDOW_S) * 1000
    try:  # aggregated by the database (GROUP BY), when the backend can
        agg = await storage.subtree_figures(contest_id, org_path_prefix, since_ms)
    except NotImplementedError:
        agg = await _scan_subtree(storage, contest_id, org_path_prefix, since_ms)
    minutes: dict[int, dict[str, int]] = {}
    for minute, n in agg["answer_minutes"]:
        minutes.setdefault(minute, {"answers": 0, "attempts_finished": 0})["answers"] += n
    for minute, n in agg["finish_minutes"]:
        minutes.setdefault(minute, {"answers": 0, "attempts_finished": 0})["attempts_finished"] += n
    answers, correct = agg["answers"], agg["correct"]
    figures = {
        "answers": answers, "correct": correct, "flagged_answers": agg["flagged"],
        "accuracy": round(correct / answers, 4) if answers else 0.0,
        "answers_per_s": round(agg["recent"] / _RATE_WINDOW_S, 1),
        "questions": [{"question_id": qid, "answers": n, "correct": c, "accuracy": round(c / n, 4) if n else 0.0}
                      for qid, n, c in sorted(agg["questions"])],
        "timeline": [{"at": minute * 60_000, **point} for minute, point in sorted(minutes.items())],
    }
    if len(_SUBTREE_CACHE) > 256:
        _SUBTREE_CACHE.clear()
    _SUBTREE_CACHE[key] = (now, figures)
    return figures


async def _scan_subtree(storage: Storage, contest_id: str, org_path_prefix: str, since_ms: int) -> dict[str, Any]:
    """Storage.subtree_figures computed row by row, for a backend without it."""
    answers = correct = flagged = recent = 0
    per_q: dict[str, list[int]] = {}
    answer_minutes: dict[int, int] = {}
    finish_minutes: dict[int, int] = {}
    async for row in storage.iter_answers(contest_id, org_path_prefix):
        # attempt_id, user_id, index, question_id, choice, correct, points_awarded, answered_at, flagged
        answers += 1
        ok = 1 if row[5] else 0
        correct += ok
        flagged += 1 if row[8] else 0
        counts = per_q.setdefault(str(row[3]), [0, 0])
        counts[0] += 1
        counts[1] += ok
        at = int(row[7] or 0)
        recent += at >= since_ms
        answer_minutes[at // 60_000] = answer_minutes.get(at // 60_000, 0) + 1
    async for row in storage.iter_results(contest_id, org_path_prefix):
        minute = int(row[9] or 0) // 60_000
        finish_minutes[minute] = finish_minutes.get(minute, 0) + 1
    return {"answers": answers, "correct": correct, "flagged": flagged, "recent": recent,
            "questions": [(qid, n, c) for qid, (n, c) in per_q.items()],
            "answer_minutes": list(answer_minutes.items()), "finish_minutes": list(finish_minutes.items())}
