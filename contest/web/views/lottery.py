"""Lottery endpoints: create (commitment first), draw (freeze the eligible list, publish the seed),
the public result with masked names.  The method is in contest/lottery.py."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from contest.appkeys import CATALOG, PLAY, REDIS, STORAGE
from contest.lottery import Eligibility, commitment_of, draw_winners, eligible_users, list_hash, new_seed
from contest.review import FilteredResults
from contest.storage.base import ResultRows
from contest.validation import Fields
from contest.web.access import require
from contest.web.errors import ApiError
from contest.web.jsonio import json_response, read_json
from leaderboard import keys
from leaderboard.boards import mask_name

__all__ = ["lotteries_list", "lottery_create", "lottery_draw", "lottery_public"]

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _eligibility(request: web.Request, f: Fields, raw: Any) -> Eligibility:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        f.fail("eligibility", "must be an object", "not_an_object")
        return Eligibility()
    e = Fields(raw, prefix="eligibility.")
    min_score = e.integer("min_score", required=False, minimum=0, maximum=10**9, default=0) or 0
    board = e.choice("board", ("total", "daily"), default="total") or "total"
    date_from = e.text("date_from", required=False, max_len=10, pattern=_DATE_RE)
    date_to = e.text("date_to", required=False, max_len=10, pattern=_DATE_RE)
    if date_from and date_to and date_to < date_from:
        for name in ("date_from", "date_to"):  # a range error names both ends
            e.fail(name, "date_to must not be before date_from", "date_range",
                   **{"from": "date_from", "to": "date_to"})
    exclude = e.boolean("exclude_flagged", default=False)
    org_id = e.text("org_id", required=False, max_len=64)
    if org_id and org_id not in request.config_dict[CATALOG].orgs:
        e.fail("org_id", "is not a known org", "unknown_org")
    f.merge(e)
    return Eligibility(min_score, board, date_from, date_to, exclude, org_id or None)


async def _load(request: web.Request, cid: str, lid: str) -> tuple[dict[str, Any], bool]:
    raw = await request.config_dict[REDIS].hget(keys.lottery(cid, lid), keys.LOTTERY_DOC)
    if raw is None:
        raise ApiError(404, "not_found", f"no lottery {lid!r} in this contest")
    doc = orjson.loads(raw)
    return doc, doc.get("status") == "drawn"


async def lottery_create(request: web.Request) -> web.Response:
    claims = require(request, "admin")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    body = await read_json(request)
    f = Fields(body)
    name = f.text("name", max_len=100)
    winners = f.integer("winners", minimum=1, maximum=100_000)
    rule = _eligibility(request, f, body.get("eligibility"))
    f.done()
    lid = "l" + secrets.token_hex(5)
    seed = new_seed()
    doc = {"lottery_id": lid, "contest_id": contest.contest_id, "name": name, "winners_count": winners,
           "eligibility": rule.to_dict(), "commitment": commitment_of(seed), "status": "committed",
           "created_at": int(time.time() * 1000), "created_by": claims.user_id,
           "ranking": contest.ranking, "timezone": contest.config.get("timezone") or "Asia/Shanghai"}
    # the seed stays out of every answer until the draw publishes it
    async with request.config_dict[REDIS].pipeline(transaction=False) as pipe:
        pipe.hset(keys.lottery(contest.contest_id, lid),
                  mapping={keys.LOTTERY_DOC: orjson.dumps(doc), keys.LOTTERY_SEED: seed})
        pipe.zadd(keys.lotteries(contest.contest_id), {lid: doc["created_at"]})
        await pipe.execute()
    return json_response({"lottery_id": lid, "commitment": doc["commitment"], "lottery": doc}, status=201)


async def lottery_draw(request: web.Request) -> web.Response:
    require(request, "admin")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    lid = request.match_info["lid"]
    key = keys.lottery(contest.contest_id, lid)
    doc, drawn = await _load(request, contest.contest_id, lid)
    redis = request.config_dict[REDIS]
    # one draw only, even when two admins press the button at once
    if drawn or not await redis.hsetnx(key, keys.LOTTERY_DRAWING, int(time.time() * 1000)):
        raise ApiError(409, "already_drawn", "this lottery has been drawn; a lottery is drawn once")
    try:
        rule = Eligibility.from_dict(doc["eligibility"])
        storage = request.config_dict[STORAGE]
        await storage.ping()
        source: ResultRows = storage
        if rule.exclude_flagged:
            source = await FilteredResults.for_contest(storage, contest.contest_id)
        orgs = request.config_dict[CATALOG].orgs
        prefix = orgs.path_string(rule.org_id) if rule.org_id else None
        drawn_at = int(time.time() * 1000)
        rows = [row async for row in source.iter_results(contest.contest_id, prefix)]
        eligible = eligible_users(rows, rule, ranking=doc["ranking"], timezone=doc["timezone"], cutoff_ms=drawn_at)
        seed = (await redis.hget(key, keys.LOTTERY_SEED)).decode()
        names = {str(r[1]): (r[2] or "", r[3]) for r in rows}
        winners = []
        for uid in draw_winners(seed, eligible, int(doc["winners_count"])):
            name, org_id = names.get(uid, ("", None))
            org = orgs.get(org_id) if org_id else None
            winners.append({"user_id": uid, "name": name, "org_id": org_id, "org_name": org.name if org else None})
        doc.update(status="drawn", drawn_at=drawn_at, seed=seed, eligible_count=len(eligible),
                   eligible_hash=list_hash(eligible), winners=winners)
        await redis.hset(key, mapping={keys.LOTTERY_DOC: orjson.dumps(doc),
                                       keys.LOTTERY_ELIGIBLE: orjson.dumps(eligible)})
    except BaseException:
        await redis.hdel(key, keys.LOTTERY_DRAWING)
        raise
    return json_response(doc)


async def lottery_public(request: web.Request) -> web.Response:
    """The lottery as anyone may see it: the commitment before the draw; seed, eligible count and
    hash and the winners (names masked) after."""
    contest = request.config_dict[PLAY].contest(request.match_info["cid"])
    doc, drawn = await _load(request, contest.contest_id, request.match_info["lid"])
    doc.pop("created_by", None)
    if drawn:
        doc["winners"] = [{**w, "name": mask_name(w.get("name") or "")} for w in doc.get("winners") or []]
    return json_response(doc)


async def lotteries_list(request: web.Request) -> web.Response:
    """A contest's lotteries, newest first, as the admin sees them (full names; the seed once drawn)."""
    require(request, "admin")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    redis = request.config_dict[REDIS]
    ids = [i.decode() if isinstance(i, bytes) else str(i)
           for i in await redis.zrevrange(keys.lotteries(contest.contest_id), 0, 199)]
    docs = []
    if ids:
        async with redis.pipeline(transaction=False) as pipe:
            for lid in ids:
                pipe.hget(keys.lottery(contest.contest_id, lid), keys.LOTTERY_DOC)
            docs = [orjson.loads(raw) for raw in await pipe.execute() if raw is not None]
    return json_response({"contest_id": contest.contest_id, "lotteries": docs})
