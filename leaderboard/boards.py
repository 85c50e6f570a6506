"""Reading boards: a page with competition ranks, and a member's rank with the entries around it.

On a one-shard contest both are one Lua call (``LEADERBOARD_PAGE`` / ``LEADERBOARD_ME``): ranks
are computed with ZCOUNT over strictly greater encoded scores, so equal (score, duration) share a
rank ("1224").

A sharded contest keeps one sorted set per shard (``{c:<id>:<n>}``, possibly on different
cluster masters), so no script can see the whole board.  The reads here combine the shards and
answer exactly what one sorted set holding every member would answer, order of ties included
(Redis orders equal scores by member, descending, in ZREVRANGE):

- a page: each shard's first ``offset + limit`` entries, merged; for deep pages the score of the
  entry at ``offset`` is found by a binary search on summed ZCOUNTs, and only the entries from
  that score down are fetched;
- a rank: 1 + the sum over shards of ZCOUNT(strictly greater);
- around-me: the member's global position (greater + ties ordered before it), then a page there.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from leaderboard.encoding import decode
from leaderboard.scripts import LEADERBOARD_ME, LEADERBOARD_PAGE, BoardMeReply, BoardPageReply, Script

__all__ = [
    "Entry",
    "MeResult",
    "Page",
    "Runner",
    "ShardKeys",
    "count_above",
    "mask_name",
    "read_board_me",
    "read_board_page",
    "read_me",
    "read_me_sharded",
    "read_page",
    "read_page_sharded",
]

# (board key, names hash key) of one shard
ShardKeys = tuple[str, str]
# Pages that end within this many entries are read by merging each shard's head; deeper ones
# first locate their first score by binary search (the head of 4 shards x 10 M would not fit).
DIRECT_MAX = 2000
_TIES_MAX = 100_000  # members sharing one encoded score read to place a member among them


class Runner(Protocol):
    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class Entry:
    rank: int
    user_id: str
    name: str
    org_id: str
    score: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    entries: list[Entry]


@dataclass(frozen=True, slots=True)
class MeResult:
    total: int
    rank: int | None
    score: int | None
    duration_ms: int | None
    around: list[Entry]

    @property
    def percentile(self) -> float | None:
        """Share of the other entrants ranked below this one, in percent ("better than X%")."""
        if self.rank is None:
            return None
        if self.total <= 1:
            return 100.0
        return round(100.0 * (self.total - self.rank) / (self.total - 1), 2)


def mask_name(name: str) -> str:
    """Public boards never show full names: the first character and an asterisk (张三 -> 张*)."""
    return f"{name[:1]}*" if name else "*"


def _entries(rows: Sequence[Any]) -> list[Entry]:
    out = []
    for j in range(0, len(rows), 4):
        uid, encoded, rank, meta = rows[j : j + 4]
        name, _, org = (meta.decode() if isinstance(meta, bytes) else meta).partition("\t")
        score, duration = decode(encoded)
        out.append(Entry(int(rank), uid.decode() if isinstance(uid, bytes) else uid, name, org, score, duration))
    return out


async def read_page(runner: Runner, board: str, names: str, offset: int, limit: int) -> Page:
    reply = BoardPageReply.from_reply(await runner.run(LEADERBOARD_PAGE, (board, names), (offset, limit)))
    return Page(reply.total, _entries(reply.rows))


async def read_me(runner: Runner, board: str, names: str, user_id: str, around: int) -> MeResult:
    reply = BoardMeReply.from_reply(await runner.run(LEADERBOARD_ME, (board, names), (user_id, around)))
    if reply.rank is None:
        return MeResult(reply.total, None, None, None, [])
    score, duration = decode(reply.encoded)
    return MeResult(reply.total, reply.rank, score, duration, _entries(reply.rows))


# ---- sharded boards -------------------------------------------------------------------------
def _score_arg(value: float, exclusive: bool = False) -> str:
    text = str(int(value)) if float(value).is_integer() else repr(float(value))
    return f"({text}" if exclusive else text


def _merge(per_shard: Sequence[Sequence[tuple[bytes, float]]]) -> list[tuple[float, bytes, int]]:
    """Rows of every shard in one sorted-set order: score descending, then member descending."""
    streams = [[(score, member, shard) for member, score in rows] for shard, rows in enumerate(per_shard)]
    return list(heapq.merge(*streams, key=lambda row: (row[0], row[1]), reverse=True))


async def _sum_counts(redis: Any, boards: Sequence[str], low: str, high: str = "+inf") -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for board in boards:
            pipe.zcount(board, low, high)
        return sum(int(n) for n in await pipe.execute())


async def count_above(redis: Any, boards: Sequence[str], encoded: float) -> int:
    """Members of ``boards`` with a strictly greater encoded score (their rank is this + 1)."""
    return await _sum_counts(redis, boards, _score_arg(encoded, exclusive=True)) if boards else 0


async def _score_at(redis: Any, boards: Sequence[str], position: int) -> float:
    """The encoded score of the entry at 0-based ``position`` of the combined board (it exists)."""
    async with redis.pipeline(transaction=False) as pipe:
        for board in boards:
            pipe.zrange(board, 0, 0, withscores=True)
            pipe.zrevrange(board, 0, 0, withscores=True)
        ends = await pipe.execute()
    lows = [rows[0][1] for rows in ends[0::2] if rows]
    highs = [rows[0][1] for rows in ends[1::2] if rows]
    lo, hi = int(min(lows)), int(max(highs))
    # largest x with count(score >= x) > position; encoded scores are integers below 2**53
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if await _sum_counts(redis, boards, str(mid)) > position:
            lo = mid
        else:
            hi = mid - 1
    return float(lo)


async def _with_names(redis: Any, shards: Sequence[ShardKeys], rows: list[tuple[float, bytes, int]],
                      offset: int, first_rank: int) -> list[Entry]:
    wanted: dict[int, list[bytes]] = {}
    for _, member, shard in rows:
        wanted.setdefault(shard, []).append(member)
    order = sorted(wanted)
    metas: dict[tuple[int, bytes], Any] = {}
    if order:
        async with redis.pipeline(transaction=False) as pipe:
            for shard in order:
                pipe.hmget(shards[shard][1], wanted[shard])
            replies = await pipe.execute()
        for shard, values in zip(order, replies, strict=True):
            for member, meta in zip(wanted[shard], values, strict=True):
                metas[(shard, member)] = meta or b""
    flat: list[Any] = []
    prev: float | None = None
    rank = 0
    for k, (score, member, shard) in enumerate(rows, start=1):
        if k == 1:
            rank = first_rank
        elif score != prev:
            rank = offset + k
        prev = score
        flat += [member, score, rank, metas[(shard, member)]]
    return _entries(flat)


async def read_page_sharded(redis: Any, shards: Sequence[ShardKeys], offset: int, limit: int, *,
                            direct_max: int = DIRECT_MAX) -> Page:
    """One page of the board made of every shard's sorted set, ranked as one sorted set would be."""
    boards = [board for board, _ in shards]
    if offset + limit <= direct_max:
        async with redis.pipeline(transaction=False) as pipe:
            for board in boards:
                pipe.zcard(board)
                pipe.zrevrange(board, 0, offset + limit - 1, withscores=True)
            replies = await pipe.execute()
        total = sum(int(n) for n in replies[0::2])
        merged = _merge(replies[1::2])
        window = merged[offset : offset + limit]
        if not window:
            return Page(total, [])
        # every entry scored above the first of the window is in the merged head, before it
        greater = sum(1 for row in merged[:offset] if row[0] > window[0][0])
        return Page(total, await _with_names(redis, shards, window, offset, greater + 1))
    async with redis.pipeline(transaction=False) as pipe:
        for board in boards:
            pipe.zcard(board)
        total = sum(int(n) for n in await pipe.execute())
    if offset >= total:
        return Page(total, [])
    first = await _score_at(redis, boards, offset)
    greater = await count_above(redis, boards, first)
    skip = offset - greater  # entries tied with `first` that come before the page
    async with redis.pipeline(transaction=False) as pipe:
        for board in boards:
            pipe.zrevrangebyscore(board, _score_arg(first), "-inf", start=0, num=skip + limit, withscores=True)
        merged = _merge(await pipe.execute())
    window = merged[skip : skip + limit]
    return Page(total, await _with_names(redis, shards, window, offset, greater + 1))


async def read_me_sharded(redis: Any, shards: Sequence[ShardKeys], home: int, user_id: str,
                          around: int) -> MeResult:
    """Rank and neighbours of ``user_id``, whose entries live in shard ``home``."""
    boards = [board for board, _ in shards]
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zscore(boards[home], user_id)
        for board in boards:
            pipe.zcard(board)
        replies = await pipe.execute()
    mine, total = replies[0], sum(int(n) for n in replies[1:])
    if mine is None:
        return MeResult(total, None, None, None, [])
    member = user_id.encode()
    async with redis.pipeline(transaction=False) as pipe:
        for board in boards:
            pipe.zcount(board, _score_arg(mine, exclusive=True), "+inf")
            pipe.zrevrangebyscore(board, _score_arg(mine), _score_arg(mine), start=0, num=_TIES_MAX)
        replies = await pipe.execute()
    greater = sum(int(n) for n in replies[0::2])
    ties_before = sum(1 for ties in replies[1::2] for m in ties if m > member)
    position = greater + ties_before
    lo = max(0, position - around)
    page = await read_page_sharded(redis, shards, lo, position - lo + around + 1)
    score, duration = decode(mine)
    return MeResult(total, greater + 1, score, duration, page.entries)


async def read_board_page(runner: Runner, redis: Any, shards: Sequence[ShardKeys], offset: int,
                          limit: int) -> Page:
    """A page of a board of one shard (one Lua call) or of many (merged)."""
    if len(shards) == 1:
        return await read_page(runner, shards[0][0], shards[0][1], offset, limit)
    return await read_page_sharded(redis, shards, offset, limit)


async def read_board_me(runner: Runner, redis: Any, shards: Sequence[ShardKeys], home: int, user_id: str,
                        around: int) -> MeResult:
    if len(shards) == 1:
        return await read_me(runner, shards[0][0], shards[0][1], user_id, around)
    return await read_me_sharded(redis, shards, home, user_id, around)
