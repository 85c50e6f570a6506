"""Evidence for the review of a flagged attempt: per-answer times against the human minimum,
answers per second, and how many client IPs and devices the member started attempts from.

IPs and devices are noted when an attempt starts (one pipelined round trip, off the answer
path) in two small sets per member under the contest's hash tag, kept 40 days; a device is
the hash of its User-Agent (coarse, but two phones sharing one account show up as two).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import orjson

from contest.errors import REDIS_UNAVAILABLE
from contest.play import parse_attempt_id
from contest.storage.base import Storage
from leaderboard import keys

__all__ = ["attempt_evidence", "client_counts", "note_start"]

log = logging.getLogger(__name__)
_TTL_S = 40 * 86_400


def _keys(contest_id: str, user_id: str) -> tuple[str, str]:
    return keys.client_ips(contest_id, user_id), keys.client_devices(contest_id, user_id)


async def note_start(redis: Any, contest_id: str, attempt_id: str | None, new: bool, user_id: str, ip: str,
                     user_agent: str) -> None:
    """After an attempt start: the IP and device it came from and, for a new attempt, the
    questions it drew (a drawn question is never changed again, question_bank.versions).
    A Redis hiccup here never fails the start."""
    ip_key, dev_key = _keys(contest_id, user_id)
    device = hashlib.sha1(user_agent.encode("utf-8", "replace")).hexdigest()[:12]
    try:
        drawn: list[str] = []
        if new and attempt_id:
            _, shard = parse_attempt_id(attempt_id)
            paper = await redis.hget(keys.attempt(contest_id, attempt_id, shard), "paper")
            drawn = [item[0] for item in orjson.loads(paper)] if paper else []
        pipe = redis.pipeline(transaction=False)
        if drawn:
            pipe.sadd(keys.bank_drawn(), *drawn)
        pipe.sadd(ip_key, ip or "?")
        pipe.expire(ip_key, _TTL_S)
        pipe.sadd(dev_key, device)
        pipe.expire(dev_key, _TTL_S)
        await pipe.execute()
    except (*REDIS_UNAVAILABLE, ValueError) as exc:
        log.warning("could not note the start of %s in %s: %r", user_id, contest_id, exc)


async def client_counts(redis: Any, contest_id: str, user_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """user id -> (distinct IPs, distinct devices) seen at attempt starts."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    pipe = redis.pipeline(transaction=False)
    for uid in ids:
        ip_key, dev_key = _keys(contest_id, uid)
        pipe.scard(ip_key)
        pipe.scard(dev_key)
    counts = await pipe.execute()
    return {uid: (int(counts[2 * i]), int(counts[2 * i + 1])) for i, uid in enumerate(ids)}


async def attempt_evidence(storage: Storage, redis: Any, contest_id: str, attempt_id: str,
                           min_answer_ms: int) -> dict[str, Any] | None:
    """Per-answer times of one finished attempt (from durable storage), or None when unknown.

    Answers are read through the export's org filter with the member's own org path, so only
    the few members of one village are scanned, not the whole contest.
    """
    row = await storage.load_attempt(attempt_id)
    if row is None or row.get("contest_id") != contest_id:
        return None
    started = int(row.get("started_at") or 0)
    mine = [a async for a in storage.iter_answers(contest_id, row.get("org_path") or None) if a[0] == attempt_id]
    mine.sort(key=lambda a: (int(a[7] or 0), int(a[2])))
    answers, previous = [], started
    for a in mine:
        at = int(a[7] or 0)
        answers.append({"index": int(a[2]), "question_id": a[3], "elapsed_ms": max(0, at - previous),
                        "correct": bool(a[5]), "flagged": bool(a[8])})
        previous = at
    span_ms = (previous - started) if answers else 0
    ips, devices = (await client_counts(redis, contest_id, [str(row["user_id"])])).get(str(row["user_id"]), (0, 0))
    return {"attempt_id": attempt_id, "user_id": row["user_id"], "started_at": started,
            "finished_at": row.get("finished_at"), "min_answer_ms": min_answer_ms, "answers": answers,
            "fast_answers": sum(1 for a in answers if a["elapsed_ms"] < min_answer_ms),
            "answers_per_s": round(len(answers) / (span_ms / 1000), 2) if span_ms > 0 else None,
            "ip_count": ips, "device_count": devices}
