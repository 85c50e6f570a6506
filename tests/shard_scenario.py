"""Scripted traffic played against a 1-shard and an N-shard contest, and everything both serve.

The same users play both contests (same user ids), each hitting the same target score with the
same number of correct answers on whatever paper they drew.  Every attempt is left to run out its
time limit and is finished by the sweeper at its deadline, so every duration equals the time
limit: the boards are then fully determined by the scores (ties broken by member, as one sorted
set does), and the two contests must serve identical boards, ranks, around-me, org rankings and
stats.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestClient

from contest.appkeys import REDIS
from contest.play import parse_attempt_id
from leaderboard import keys
from tests.fixtures.app import Seeded, admin_headers, seed_contest

__all__ = ["VILLAGES", "play_both", "snapshot"]

VILLAGES = ["360101001001", "360101001002", "360101002001", "360102001002", "360201001001",
            "360202002002", "360301001003", "360302002001", "360302002002"]
CITY = "360300"
TOWN = "360302002"
TIME_LIMIT_S = 3


def _choose(points: list[int], count: int, total: int) -> list[int]:
    """Indexes of exactly ``count`` questions worth ``total`` points together (small DP)."""
    reach: dict[tuple[int, int], list[int]] = {(0, 0): []}
    for i, p in enumerate(points):
        for (k, s), picked in list(reach.items()):
            if k < count and s + p <= total and (k + 1, s + p) not in reach:
                reach[(k + 1, s + p)] = [*picked, i]
    if (count, total) not in reach:
        raise AssertionError(f"no {count} questions worth {total} in a paper of {points}")
    return reach[(count, total)]


async def _play(client: TestClient, cid: str, user: dict[str, Any], target: int) -> None:
    resp = await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])
    assert resp.status == 201, await resp.text()
    attempt = await resp.json()
    aid = attempt["attempt_id"]
    _, shard = parse_attempt_id(aid)
    state = await client.server.app[REDIS].hgetall(keys.attempt(cid, aid, shard))
    fields = [state[f"q{i}".encode()].decode().split("|") for i in range(len(attempt["questions"]))]
    right = set(_choose([int(f[2]) for f in fields], target // 10, target))
    for q, f in zip(attempt["questions"], fields, strict=True):
        key = f[1]
        if q["index"] in right:
            choice: Any = list(key) if q["type"] == "multiple" else key
        else:
            wrong = next((o["key"] for o in q["options"] if o["key"] not in key), None)
            choice = [key[0]] if wrong is None else ([wrong] if q["type"] == "multiple" else wrong)
        resp = await client.post(f"/api/v1/attempts/{aid}/answers", json={"index": q["index"], "choice": choice},
                                 headers=user["headers"])
        assert resp.status == 200, await resp.text()
    user.setdefault("attempts", {})[cid] = aid


async def play_both(client: TestClient, shards: int, users: int = 24) -> tuple[Seeded, Seeded, list[dict[str, Any]]]:
    """Seed contests ``solo`` (1 shard) and ``multi`` (``shards``), play the same traffic in both."""
    solo = await seed_contest(client, contest_id="solo", time_limit_s=TIME_LIMIT_S, attempts_per_day=0)
    multi = await seed_contest(client, contest_id="multi", time_limit_s=TIME_LIMIT_S, attempts_per_day=0,
                               shards=shards)
    people = [await solo.register(org_id=VILLAGES[(i * 7) % len(VILLAGES)], name=f"选手{i:02d}")
              for i in range(users)]
    # targets with many ties (0..50 in steps of 10), so rank sharing and tie order are exercised
    targets = [((i * 5) % 6) * 10 for i in range(users)]
    started = time.monotonic()
    await asyncio.gather(*(_play(client, cid, u, t) for u, t in zip(people, targets, strict=True)
                           for cid in ("solo", "multi")))
    assert time.monotonic() - started < TIME_LIMIT_S, "the traffic did not fit in the time limit"
    # the sweeper finishes every attempt at its deadline: all durations equal the time limit
    deadline = time.monotonic() + TIME_LIMIT_S + 15
    while True:
        stats = [await _stats(client, cid) for cid in ("solo", "multi")]
        if all(s["attempts_finished"] == users for s in stats):
            break
        assert time.monotonic() < deadline, f"the sweeper did not finish the attempts: {stats}"
        await asyncio.sleep(0.1)
    return solo, multi, people


async def _stats(client: TestClient, cid: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/admin/contests/{cid}/stats", headers=admin_headers())
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _get(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Any:
    resp = await client.get(path, headers=headers or admin_headers())
    assert resp.status == 200, f"{path}: {await resp.text()}"
    return await resp.json()


async def snapshot(client: TestClient, cid: str, people: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the contest serves about its results (time-dependent figures left out)."""
    out: dict[str, Any] = {}
    base = f"/api/v1/contests/{cid}"
    for query in ("limit=200", "offset=5&limit=7", "offset=11&limit=3", "board=daily&limit=200",
                  f"org_id={CITY}&limit=200", f"org_id={TOWN}&offset=1&limit=4", "offset=30&limit=5"):
        out[f"board?{query}"] = await _get(client, f"{base}/leaderboard?{query}")
    for u in people:
        for query in ("around=3", "around=0", f"around=2&org_id={CITY}"):
            me = await _get(client, f"{base}/leaderboard/me?{query}", u["headers"])
            out[f"me:{u['user_id']}?{query}"] = me
        # a finish after the deadline answers 410 with the stored result and its (global) rank
        resp = await client.post(f"/api/v1/attempts/{u['attempts'][cid]}/finish", headers=u["headers"])
        assert resp.status == 410, await resp.text()
        result = (await resp.json())["error"]["details"]["result"]
        out[f"finish:{u['user_id']}"] = {k: result[k] for k in ("score", "rank", "best_score", "duration_ms",
                                                                  "correct_count", "counted")}
    for sort in ("participation_rate", "participants", "avg_score", "total_score"):
        out[f"orgs level5 {sort}"] = await _get(client, f"{base}/orgs?level=5&sort={sort}&limit=500")
        out[f"orgs level5 {sort} page"] = await _get(client, f"{base}/orgs?level=5&sort={sort}&offset=4&limit=6")
        out[f"orgs level3 {sort}"] = await _get(client, f"{base}/orgs?level=3&sort={sort}&offset=1&limit=3")
        out[f"orgs root {sort}"] = await _get(client, f"{base}/orgs?sort={sort}")
        out[f"orgs city {sort}"] = await _get(client, f"{base}/orgs?parent_id={CITY}&sort={sort}")
    stats = await _stats(client, cid)
    stats.pop("answers_per_s", None)
    stats.pop("contest_id", None)
    # papers are drawn per attempt id, so which questions were asked differs; their sums do not
    questions = stats.pop("questions")
    stats["question_answers"] = sum(q["answers"] for q in questions)
    stats["question_correct"] = sum(q["correct"] for q in questions)
    out["stats"] = stats
    scoped = await _get(client, f"/api/v1/admin/contests/{cid}/stats?org_id={CITY}")
    out["stats city"] = {k: scoped[k] for k in ("participants", "attempts_finished", "registrants",
                                                 "participation_rate")}
    return out
