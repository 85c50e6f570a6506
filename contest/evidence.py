"""Evidence for the review of a flagged attempt: per-answer times against the human minimum,
answers per second, and how many client IPs and devices the member started attempts from.

IPs and devices are noted by the START script itself, in the start's one round trip, as short
keyed hashes (``contest.play.evidence_token``: the server keeps no address, and without the secret a token
cannot be matched to one) appended to two fields of the member's user-in-contest hash, at most
``keys.EVIDENCE_MAX`` distinct ones each; a device is its User-Agent (coarse, but two phones
sharing one account show up as two).  Before issue 18 they were two sets per member with a
40-day TTL, ~170 B per participant; those are still read until they expire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from contest.play import parse_attempt_id
from contest.storage.base import Storage
from leaderboard import keys

__all__ = ["attempt_evidence", "client_counts"]


async def client_counts(redis: Any, contest_id: str, user_ids: Iterable[str],
                        shard_of: Callable[[str], int] = lambda _uid: 0) -> dict[str, tuple[int, int]]:
    """user id -> (distinct IPs, distinct devices) seen at attempt starts (``shard_of``: the
    member's shard in a sharded contest, where START keeps them)."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    pipe = redis.pipeline(transaction=False)
    for uid in ids:
        shard = shard_of(uid)
        pipe.hmget(keys.user_contest(contest_id, uid, shard), keys.USER_IPS, keys.USER_DEVICES)
        pipe.scard(keys.client_ips(contest_id, uid, shard))
        pipe.scard(keys.client_devices(contest_id, uid, shard))
    replies = await pipe.execute()
    out = {}
    for i, uid in enumerate(ids):
        (ips, devices), legacy_ips, legacy_devices = replies[3 * i:3 * i + 3]
        width = keys.EVIDENCE_TOKEN_CHARS
        out[uid] = (max(len(ips or b"") // width, int(legacy_ips)),
                    max(len(devices or b"") // width, int(legacy_devices)))
    return out


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
    _, shard = parse_attempt_id(attempt_id)
    uid = str(row["user_id"])
    ips, devices = (await client_counts(redis, contest_id, [uid], lambda _uid: shard)).get(uid, (0, 0))
    return {"attempt_id": attempt_id, "user_id": row["user_id"], "started_at": started,
            "finished_at": row.get("finished_at"), "min_answer_ms": min_answer_ms, "answers": answers,
            "fast_answers": sum(1 for a in answers if a["elapsed_ms"] < min_answer_ms),
            "answers_per_s": round(len(answers) / (span_ms / 1000), 2) if span_ms > 0 else None,
            "ip_count": ips, "device_count": devices}
