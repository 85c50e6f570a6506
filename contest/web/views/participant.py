"""Participant endpoints: contests, attempts, answers, finish, submit."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from contest.appkeys import CATALOG, LIMITER, PLAY, REDIS
from contest.errors import DomainError, Invalid
from contest.play import normalize_choice
from contest.standing import standing
from contest.validation import Fields
from contest.web.access import optional_claims, require
from contest.web.errors import ApiError
from contest.web.jsonio import json_response, read_json

__all__ = ["answer", "answer_fields", "contest_detail", "contests_list", "finish", "get_attempt", "start_attempt",
           "submit"]


async def contests_list(request: web.Request) -> web.Response:
    now_ms = int(time.time() * 1000)
    out = []
    for contest in sorted(request.config_dict[CATALOG].contests.values(), key=lambda c: (c.starts_at, c.contest_id)):
        if contest.status != "published":
            continue
        out.append({"contest_id": contest.contest_id, "title": contest.config["title"],
                    "starts_at": contest.starts_at, "ends_at": contest.ends_at, "status": contest.status,
                    "phase": contest.status_now(now_ms),
                    "questions_per_attempt": contest.config.get("questions_per_attempt")})
    return json_response({"contests": out})


async def contest_detail(request: web.Request) -> web.Response:
    play = request.config_dict[PLAY]
    contest = play.contest(request.match_info["cid"])
    body = contest.public()
    body["phase"] = contest.status_now(int(time.time() * 1000))
    try:
        claims = optional_claims(request)
    except DomainError:  # a public page: a stale or bad token only means no personal figures
        claims = None
    if claims is not None and claims.role == "participant":
        # a signed-in participant also learns what is left to them (issue 15 item 4); with Redis
        # away the rules are still worth showing, without those figures
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            body.update(await standing(request.config_dict[REDIS], contest, claims.user_id,
                                       play.shard_of(contest, claims.user_id)))
    return json_response(body)


async def start_attempt(request: web.Request) -> web.Response:
    claims = require(request, "participant")
    limiter = request.config_dict[LIMITER]
    await limiter.check(("start_user", claims.user_id), ("start_ip", limiter.ip_of(request)))
    # the IP and device go along for the review of flagged attempts (noted by the START script)
    status, body = await request.config_dict[PLAY].start(claims, request.match_info["cid"], ip=limiter.ip_of(request),
                                                         user_agent=request.headers.get("User-Agent", ""))
    return json_response(body, status=status)


async def get_attempt(request: web.Request) -> web.Response:
    claims = require(request, "participant")
    return json_response(await request.config_dict[PLAY].get(claims, request.match_info["aid"]))


def _index(f: Fields) -> int:
    index = f.integer("index", minimum=0, maximum=199)
    return index if index is not None else -1


def answer_fields(body: dict[str, Any]) -> tuple[int, Any]:
    """(index, choice as sent) of an answer body; 400 validation_failed naming every bad field.
    (The answer lane, contest/web/answer_lane.py, validates with this too.)"""
    f = Fields(body)
    index = _index(f)
    if "choice" not in body or body["choice"] is None:
        f.fail("choice", "is required")
    f.done()
    return index, body["choice"]


async def answer(request: web.Request) -> web.Response:
    claims = require(request, "participant")
    index, choice = answer_fields(await read_json(request))
    limiter = request.config_dict[LIMITER]
    work = request.config_dict[PLAY].answer(claims, request.match_info["aid"], index, choice)
    return json_response(await limiter.ride_along("answer_ip", limiter.ip_of(request), work))


async def finish(request: web.Request) -> web.Response:
    claims = require(request, "participant")
    return json_response(await request.config_dict[PLAY].finish(claims, request.match_info["aid"]))


async def submit(request: web.Request) -> web.Response:
    claims = require(request, "participant")
    body = await read_json(request)
    raw = body.get("answers")
    if not isinstance(raw, list) or len(raw) > 200:
        raise ApiError(400, "validation_failed", "answers must be a list of {index, choice}",
                       {"fields": {"answers": "must be a list of at most 200 {index, choice} objects"}})
    answers: list[tuple[int, str]] = []
    errors: dict[str, str] = {}
    seen: set[int] = set()
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            errors[f"answers[{n}]"] = "must be an object {index, choice}"
            continue
        f = Fields(item, prefix=f"answers[{n}].")
        index = _index(f)
        errors.update(f.errors)
        if index in seen:
            errors[f"answers[{n}].index"] = "appears twice"
        seen.add(index)
        try:
            choice, _ = normalize_choice(item.get("choice"))
        except Invalid:
            errors[f"answers[{n}].choice"] = "must be an option key or a list of distinct keys A-H"
            continue
        answers.append((index, choice))
    if errors:
        raise ApiError(400, "validation_failed", "some answers are malformed; nothing was recorded",
                       {"fields": errors})
    limiter = request.config_dict[LIMITER]
    work = request.config_dict[PLAY].submit(claims, request.match_info["aid"], answers)
    return json_response(await limiter.ride_along("answer_ip", limiter.ip_of(request), work))
