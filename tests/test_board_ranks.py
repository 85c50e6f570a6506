"""Board pages and around-me against a brute-force competition ranking, on boards full of ties.

The page and around-me scripts skip the ZCOUNT of a page's first row when the row just above
it has another score; these boards make both cases (tie across the boundary or not) frequent.
"""

from __future__ import annotations

import random

import redis.asyncio as aioredis

from contest.redis_client import PipelinedScripts
from leaderboard.boards import read_me, read_page


def _reference(members: dict[str, int]) -> list[tuple[str, int, int]]:
    """(uid, encoded score, competition rank) in board order (score desc, then member desc as Redis does)."""
    ordered = sorted(members.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    out = []
    for uid, score in ordered:
        out.append((uid, score, 1 + sum(1 for s in members.values() if s > score)))
    return out


async def test_pages_and_around_me_rank_like_brute_force(redis_client: aioredis.Redis, redis_url: str) -> None:
    rng = random.Random(5)
    for size, spread in ((1, 1), (7, 2), (60, 4), (150, 40)):
        board, names = f"{{t}}:board:{size}", f"{{t}}:names:{size}"
        members = {f"m{i:03d}": rng.randrange(spread) * 4294967296 + 4294967295 - rng.choice((1000, 2000))
                   for i in range(size)}
        await redis_client.zadd(board, members)
        await redis_client.hset(names, mapping={uid: f"n{uid}\torg" for uid in members})
        expected = _reference(members)
        runner = PipelinedScripts(redis_url)
        try:
            for offset in range(0, size + 2):
                for limit in (1, 3, 50):
                    page = await read_page(runner, board, names, offset, limit)
                    got = [(e.user_id, e.rank) for e in page.entries]
                    assert page.total == size
                    assert got == [(u, r) for u, _, r in expected[offset:offset + limit]], (size, offset, limit)
            for position, (uid, _, rank) in enumerate(expected):
                for around in (0, 1, 3):
                    me = await read_me(runner, board, names, uid, around)
                    assert me.rank == rank and me.total == size
                    lo = max(0, position - around)
                    want = [(u, r) for u, _, r in expected[lo:position + around + 1]]
                    assert [(e.user_id, e.rank) for e in me.around] == want, (size, uid, around)
                    assert all(e.name == f"n{e.user_id}" for e in me.around)
            assert (await read_me(runner, board, names, "nobody", 2)).rank is None
        finally:
            await runner.aclose()
