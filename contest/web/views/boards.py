"""Leaderboards, around-me, org rankings and the live SSE feed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from contest.appkeys import CATALOG, PLAY, REDIS, RUNNER
from contest.auth import Claims
from contest.contests import Contest
from contest.orgtree import Org, OrgTree
from contest.stats import read_counters
from contest.validation import Fields
from contest.web.access import optional_claims, require
from contest.web.errors import ApiError
from contest.web.jsonio import json_response
from contest.web.live import HEARTBEAT, LIVE
from leaderboard import keys
from leaderboard.boards import Entry, ShardKeys, mask_name, read_board_me, read_board_page
from leaderboard.orgs import SORTS, OrgInfo, rank_children, rank_level

__all__ = ["leaderboard", "leaderboard_me", "live", "live_snapshot", "org_ranking"]


def _shard_keys(contest: Contest, day: str | None = None, org_id: str | None = None,
                request_orgs: OrgTree | None = None) -> list[ShardKeys]:
    """(board, names) of every shard of the contest: one pair unless the contest is sharded."""
    cid = contest.contest_id
    lone_root = request_orgs.lone_root() if request_orgs is not None else None
    return [(keys.board(cid, day, org_id, shard, lone_root), keys.names(cid, shard))
            for shard in range(contest.shards)]


def _board_key(request: web.Request, contest: Contest, f: Fields) -> tuple[list[ShardKeys], str, str | None]:
    board = f.choice("board", ("total", "daily"), default="total") or "total"
    date = f.text("date", required=False, max_len=10)
    day = None
    if board == "daily":
        if date:
            try:
                day = dt.date.fromisoformat(date).isoformat()
            except ValueError:
                f.fail("date", "must be YYYY-MM-DD")
        else:
            day = contest.today()
    org_id = f.text("org_id", required=False, max_len=64)
    f.done()
    if org_id and org_id not in request.config_dict[CATALOG].orgs:
        raise ApiError(404, "not_found", f"no org {org_id!r}")
    return _shard_keys(contest, day, org_id or None, request.config_dict[CATALOG].orgs), board, day


def _unmask_scope(request: web.Request, claims: Claims | None) -> set[str] | None:
    """Orgs whose members' names the caller may see in full: all for admins, the subtree for organizers."""
    if claims is None:
        return None
    if claims.role == "admin":
        return {"*"}
    if claims.role == "organizer" and claims.org_id:
        return request.config_dict[CATALOG].orgs.subtree_ids(claims.org_id)
    return None


def _entry(request: web.Request, e: Entry, scope: set[str] | None) -> dict[str, Any]:
    org = request.config_dict[CATALOG].orgs.get(e.org_id) if e.org_id else None
    full = scope is not None and ("*" in scope or e.org_id in scope)
    return {"rank": e.rank, "user_id": e.user_id, "name": e.name if full else mask_name(e.name),
            "org_id": e.org_id, "org_name": org.name if org else None, "score": e.score,
            "duration_ms": e.duration_ms}


async def leaderboard(request: web.Request) -> web.Response:
    contest = request.config_dict[PLAY].contest(request.match_info["cid"])
    f = Fields(request.query)
    offset = f.integer("offset", required=False, minimum=0, maximum=10_000_000, default=0) or 0
    limit = f.integer("limit", required=False, minimum=1, maximum=200, default=50) or 50
    shards, board, day = _board_key(request, contest, f)
    scope = _unmask_scope(request, optional_claims(request))
    page = await read_board_page(request.config_dict[RUNNER], request.config_dict[REDIS], shards, offset, limit)
    return json_response({"board": board, "date": day, "total": page.total, "offset": offset, "limit": limit,
                          "entries": [_entry(request, e, scope) for e in page.entries]})


async def leaderboard_me(request: web.Request) -> web.Response:
    claims = require(request, "participant")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"])
    f = Fields(request.query)
    around = f.integer("around", required=False, minimum=0, maximum=50, default=5) or 0
    shards, board, day = _board_key(request, contest, f)
    play = request.config_dict[PLAY]
    me = await read_board_me(request.config_dict[RUNNER], request.config_dict[REDIS], shards,
                             play.shard_of(contest, claims.user_id), claims.user_id, around)
    entries = []
    for e in me.around:
        item = _entry(request, e, None)
        if e.user_id == claims.user_id:
            item["name"], item["me"] = claims.name, True
        entries.append(item)
    return json_response({"board": board, "date": day, "rank": me.rank, "score": me.score,
                          "duration_ms": me.duration_ms, "total": me.total, "percentile": me.percentile,
                          "around": entries})


def org_info(orgs: OrgTree, org: Org) -> OrgInfo:
    """What the org rankings need of an org: its id, name, level and member total."""
    return OrgInfo(org.org_id, org.name, org.level, orgs.members_total(org.org_id))


class LevelOrgs(Mapping[str, OrgInfo]):
    """The orgs of one level as rank_level reads them, each OrgInfo built when it is asked for.

    rank_level looks at a page of ids (and tests membership); a province's village level has
    128,375 orgs, and building an OrgInfo for each one cost ~0.5 s of a worker per request
    (loadtest/README.md, the 150,000 rehearsal)."""

    __slots__ = ("_ids", "_level", "_orgs")

    def __init__(self, orgs: OrgTree, level: int) -> None:
        self._orgs, self._level, self._ids = orgs, level, orgs.level_ids(level)

    def __getitem__(self, org_id: str) -> OrgInfo:
        org = self._orgs.get(org_id)
        if org is None or org.level != self._level:
            raise KeyError(org_id)
        return org_info(self._orgs, org)

    def __contains__(self, org_id: object) -> bool:
        org = self._orgs.get(org_id) if isinstance(org_id, str) else None
        return org is not None and org.level == self._level

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


async def org_ranking(request: web.Request) -> web.Response:
    contest = request.config_dict[PLAY].contest(request.match_info["cid"])
    orgs = request.config_dict[CATALOG].orgs
    f = Fields(request.query)
    parent_id = f.text("parent_id", required=False, max_len=64)
    level = f.integer("level", required=False, minimum=1, maximum=5)
    sort = f.choice("sort", SORTS, default="participation_rate") or "participation_rate"
    offset = f.integer("offset", required=False, minimum=0, maximum=1_000_000, default=0) or 0
    limit = f.integer("limit", required=False, minimum=1, maximum=500, default=50) or 50
    f.done()
    redis = request.config_dict[REDIS]

    if level is not None and not parent_id:
        total, rows = await rank_level(redis, contest.contest_id, level, LevelOrgs(orgs, level), sort, offset,
                                       limit, contest.shards)
    else:
        if parent_id and parent_id not in orgs:
            raise ApiError(404, "not_found", f"no org {parent_id!r}")
        children = [org_info(orgs, o) for o in orgs.children(parent_id or None)]
        if level is not None:
            children = [c for c in children if c.level == level]
        total, rows = await rank_children(redis, contest.contest_id, children, sort, offset, limit, contest.shards)
    return json_response({"parent_id": parent_id, "level": level, "sort": sort, "total": total,
                          "entries": [r.to_dict() for r in rows]})


async def live_snapshot(app: web.Application, contest_id: str) -> dict[str, Any]:
    """What every live subscriber of a contest receives each tick."""
    contest = app[PLAY].contest(contest_id)
    orgs = app[CATALOG].orgs
    roots = [org_info(orgs, o) for o in orgs.children(None)]
    if len(roots) == 1:
        roots = [org_info(orgs, o) for o in orgs.children(roots[0].org_id)]

    async def org_rows() -> list[Any]:
        if not roots:
            return []
        _, rows = await rank_children(app[REDIS], contest_id, roots, "participation_rate", 0, 20, contest.shards)
        return rows

    # The three reads go out together: a tick costs one round trip of latency, whatever the audience.
    page, stats, rows = await asyncio.gather(
        read_board_page(app[RUNNER], app[REDIS], _shard_keys(contest), 0, 20),
        read_counters(app[REDIS], contest_id, contest.shards),
        org_rows(),
    )
    top_orgs = [r.to_dict() for r in rows]
    top = []
    for e in page.entries:
        org = orgs.get(e.org_id) if e.org_id else None
        top.append({"rank": e.rank, "user_id": e.user_id, "name": mask_name(e.name), "org_id": e.org_id,
                    "org_name": org.name if org else None, "score": e.score, "duration_ms": e.duration_ms})
    return {"contest_id": contest_id, "title": contest.config["title"], "top": top,
            "stats": {k: stats[k] for k in ("participants", "attempts_finished", "answers", "answers_per_s")},
            "orgs": top_orgs}


async def live(request: web.Request) -> web.StreamResponse:
    contest = request.config_dict[PLAY].contest(request.match_info["cid"])
    hub = request.config_dict[LIVE]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    queue = hub.subscribe(contest.contest_id)
    try:
        await response.write(b"retry: 2000\n\n")
        # A fresh subscriber (or a reconnect with Last-Event-ID) gets the latest snapshot at once,
        # through its queue; the first one of a contest triggers a computation shared with others.
        await hub.ensure_latest(contest.contest_id)
        while True:
            try:
                frame = await asyncio.wait_for(queue.get(), hub.heartbeat_s)
            except TimeoutError:
                frame = HEARTBEAT
            await response.write(frame)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(contest.contest_id, queue)
        with contextlib.suppress(Exception):
            await response.write_eof()
    return response
