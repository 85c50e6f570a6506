"""Admin review of flagged attempts: list them, void / restore / clear one, read the audit log."""

from __future__ import annotations

from aiohttp import web

from contest.appkeys import CATALOG, PLAY, REDIS, RUNNER, STORAGE
from contest.evidence import attempt_evidence, client_counts
from contest.review import ACTIONS, Reviewer
from contest.validation import Fields
from contest.web.access import require
from contest.web.errors import ApiError
from contest.web.jsonio import json_response, read_json

__all__ = ["evidence", "flagged", "review", "reviews_log"]


def _reviewer(request: web.Request) -> Reviewer:
    app = request.config_dict
    return Reviewer(app[RUNNER], app[REDIS], app[STORAGE], app[CATALOG])


async def flagged(request: web.Request) -> web.Response:
    require(request, "admin")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    f = Fields(request.query)
    pending = f.choice("pending", ("0", "1", "true", "false"), default="0") in ("1", "true")
    # the review page's filter: pending (no decision yet), decided, or all
    status = f.choice("status", ("pending", "decided", "all"), default="pending" if pending else "all")
    f.done()
    await request.config_dict[STORAGE].ping()
    entries = await _reviewer(request).flagged(contest)
    if status == "pending":
        entries = [e for e in entries if e["review"] is None]
    elif status == "decided":
        entries = [e for e in entries if e["review"] is not None]
    play = request.config_dict[PLAY]
    counts = await client_counts(request.config_dict[REDIS], contest.contest_id, (e["user_id"] for e in entries),
                                 lambda uid: play.shard_of(contest, uid))
    for e in entries:
        e["ip_count"], e["device_count"] = counts.get(e["user_id"], (0, 0))
        duration, n = e.get("duration_ms") or 0, e.get("question_count") or 0
        e["answers_per_s"] = round(n / (duration / 1000), 2) if duration else None
    return json_response({"contest_id": contest.contest_id, "total": len(entries), "entries": entries,
                          "min_answer_ms": contest.config.get("min_answer_ms")})


async def evidence(request: web.Request) -> web.Response:
    """One flagged attempt's evidence: per-answer times against the minimum, IPs and devices."""
    require(request, "admin")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    found = await attempt_evidence(request.config_dict[STORAGE], request.config_dict[REDIS], contest.contest_id,
                                   request.match_info["aid"], int(contest.config.get("min_answer_ms") or 0))
    if found is None:
        raise ApiError(404, "not_found", "no such finished attempt in this contest (yet)")
    return json_response(found)


async def review(request: web.Request) -> web.Response:
    claims = require(request, "admin")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    body = await read_json(request)
    f = Fields(body)
    action = f.choice("action", ACTIONS, required=True)
    reason = f.text("reason", max_len=500, required=action == "void", default="") or ""
    f.done()
    assert action is not None
    result = await _reviewer(request).decide(contest, request.match_info["aid"], action, reason, claims.user_id)
    return json_response(result)


async def reviews_log(request: web.Request) -> web.Response:
    require(request, "admin")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    rows = await request.config_dict[STORAGE].load_reviews(contest.contest_id)
    return json_response({"contest_id": contest.contest_id, "entries": [
        {"attempt_id": r["attempt_id"], "action": r["action"], "reason": r["reason"], "by": r["by"], "at": int(r["at"])}
        for r in rows]})
