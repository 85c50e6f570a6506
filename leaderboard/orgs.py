"""Org rankings of a contest: participants, attempts, total and average score, participation rate.

The finish script keeps, per org of the finisher's path, counters in three hashes (``os:p``,
``os:a``, ``os:s``) and one sorted set per (metric, level).  Listing the children of one org reads
the hashes for those children; listing a whole level (up to ~100,000 villages) pages through the
level's sorted set and fills in the orgs nobody of which has finished yet, which all rank last.

A sharded contest keeps those counters per shard: counts and scores are summed over the shards
(participation rate = summed participants / members, average = summed score / summed
participants), and a level ranking, whose per-shard sorted sets hold per-shard values, is
computed from the summed counters of the level's active orgs, ordered as one sorted set would
order them (value descending, then org id descending).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leaderboard import keys

__all__ = ["SORTS", "OrgInfo", "OrgRow", "org_counters", "rank_children", "rank_level"]

SORTS = ("participation_rate", "participants", "avg_score", "total_score")


@dataclass(frozen=True, slots=True)
class OrgInfo:
    org_id: str
    name: str
    level: int
    members: int


@dataclass(frozen=True, slots=True)
class OrgRow:
    rank: int
    org_id: str
    name: str
    level: int
    members: int
    participants: int
    participation_rate: float
    attempts: int
    total_score: int
    avg_score: float

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


def _metric(row: tuple[OrgInfo, int, int, int], sort: str) -> float:
    info, p, _, s = row
    if sort == "participants":
        return p
    if sort == "total_score":
        return s
    if sort == "avg_score":
        return s / p if p else 0.0
    return p / info.members if info.members else 0.0


async def _counters(redis: Any, cid: str, org_ids: list[str], shards: int = 1) -> list[tuple[int, int, int]]:
    """(participants, attempts, total score) of each org, summed over the contest's shards."""
    if not org_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            for what in ("p", "a", "s"):
                pipe.hmget(keys.org_stat(cid, what, shard), org_ids)
        replies = await pipe.execute()
    sums = [[0, 0, 0] for _ in org_ids]
    for j, values in enumerate(replies):
        column = j % 3
        for i, value in enumerate(values):
            sums[i][column] += int(value or 0)
    return [(p, a, s) for p, a, s in sums]


async def org_counters(redis: Any, cid: str, org_ids: list[str], shards: int = 1) -> list[tuple[int, int, int]]:
    """(participants, finished attempts, total score) of each org, summed over the shards."""
    return await _counters(redis, cid, org_ids, shards)


def _rows(infos: list[OrgInfo], counters: list[tuple[int, int, int]], sort: str, offset: int,
          first_rank: int | None = None) -> list[OrgRow]:
    """Competition ranks: a row tied with the one before shares its rank."""
    rows = []
    rank = 0
    prev: float | None = None
    for pos, (info, (p, a, s)) in enumerate(zip(infos, counters, strict=True)):
        value = _metric((info, p, a, s), sort)
        if pos == 0:
            rank = first_rank if first_rank is not None else offset + 1
        elif value != prev:
            rank = offset + pos + 1
        prev = value
        rows.append(OrgRow(rank, info.org_id, info.name, info.level, info.members, p,
                           round(p / info.members, 6) if info.members else 0.0, a, s,
                           round(s / p, 2) if p else 0.0))
    return rows


async def rank_children(redis: Any, cid: str, children: list[OrgInfo], sort: str, offset: int,
                        limit: int, shards: int = 1) -> tuple[int, list[OrgRow]]:
    """Rank a parent's children (at most a few hundred) by ``sort``; ties keep org id order."""
    counters = await _counters(redis, cid, [c.org_id for c in children], shards)
    combined = sorted(zip(children, counters, strict=True),
                      key=lambda item: (-_metric((item[0], *item[1]), sort), item[0].org_id))
    ordered = [c for c, _ in combined]
    values = [v for _, v in combined]
    rows = _rows(ordered, values, sort, 0)
    return len(children), rows[offset : offset + limit]


async def rank_level(redis: Any, cid: str, level: int, level_orgs: Mapping[str, OrgInfo], sort: str,
                     offset: int, limit: int, shards: int = 1) -> tuple[int, list[OrgRow]]:
    """Rank every org of one level; orgs with finishers come from the level's sorted set."""
    if shards > 1:
        return await _rank_level_sharded(redis, cid, level, level_orgs, sort, offset, limit, shards)
    zkey = keys.org_level_rank(cid, sort, level)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(zkey)
        pipe.zrevrange(zkey, offset, offset + limit - 1, withscores=True)
        active_count, top = await pipe.execute()
    ids = [member.decode() for member, _ in top if member.decode() in level_orgs]
    if len(ids) < limit and offset + limit > active_count:
        active = {m.decode() for m in await redis.zrange(zkey, 0, -1)}
        idle = sorted(oid for oid in level_orgs if oid not in active)
        start = max(0, offset - active_count)
        ids += idle[start : start + (limit - len(ids))]
    infos = [level_orgs[i] for i in ids]
    counters = await _counters(redis, cid, ids)
    first_rank = None
    if ids and offset > 0:
        # Ties across the page boundary share the rank of the first of them; a page that starts
        # among the orgs nobody of which has finished starts at value 0 (tied with all of them).
        first = top[0][1] if top else 0.0
        higher = await redis.zcount(zkey, f"({first!r}", "+inf")
        first_rank = int(higher) + 1
    return len(level_orgs), _rows(infos, counters, sort, offset, first_rank)


async def _rank_level_sharded(redis: Any, cid: str, level: int, level_orgs: Mapping[str, OrgInfo], sort: str,
                              offset: int, limit: int, shards: int) -> tuple[int, list[OrgRow]]:
    """rank_level over shards: the active orgs' summed counters, sorted here.

    Costs one read of every active org of the level (a dashboard query, not a hot path).
    """
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            pipe.zrange(keys.org_level_rank(cid, sort, level, shard), 0, -1)
        replies = await pipe.execute()
    active_ids = sorted({m.decode() for members in replies for m in members} & level_orgs.keys(), reverse=True)
    counters = await _counters(redis, cid, active_ids, shards)
    values = {oid: _metric((level_orgs[oid], *c), sort) for oid, c in zip(active_ids, counters, strict=True)}
    by_id = dict(zip(active_ids, counters, strict=True))
    # one sorted set orders equal values by member descending: sort by id descending, then (stably) by value
    active_ids.sort(key=lambda oid: -values[oid])
    idle = sorted(oid for oid in level_orgs if oid not in by_id)
    ordered = active_ids + idle
    page = ordered[offset : offset + limit]
    first_rank = None
    if page and offset > 0:
        first_value = values.get(page[0], 0.0)
        first_rank = 1 + sum(1 for v in values.values() if v > first_value)
    counters_page = [by_id.get(oid, (0, 0, 0)) for oid in page]
    return len(level_orgs), _rows([level_orgs[i] for i in page], counters_page, sort, offset, first_rank)
