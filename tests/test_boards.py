"""Leaderboards and org rollups against hand-computed numbers: order and ties, best vs sum,
daily and org-subtree boards, around-me, and org rankings by every key, by parent and by level."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import SETTINGS
from contest.redis_client import RedisPyScripts
from leaderboard import keys
from leaderboard.boards import read_me, read_page
from leaderboard.encoding import encode
from tests.fixtures.app import admin_headers
from tests.fixtures.play import answer, finish, register, seed_custom, start, submit_scored

VA, VB = "360302002001", "360302002002"  # 荷塘村 420 members, 金竹村 80; town 石桥镇 360302002 (500)
TUANJIE = "360302001001"  # 团结村 190, town 南湖镇 360302001 (190 + 450 + 450 = 1090)
WANGJIA = "360101001001"  # 王家村 250, town 城关镇 360101001, city 临川市 360100 (2520 members)
TOWN, COUNTY, CITY = "360302002", "360302", "360300"  # county 龙泉区 1590, city 云岭市 2920


def competition_ranks(ordered: list[tuple[int, int]]) -> list[int]:
    """'1224' ranks of (score, duration) pairs already in board order."""
    return [1 + sum(1 for other in ordered if (-other[0], other[1]) < (-x[0], x[1])) for x in ordered]


async def board(client: TestClient, cid: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/contests/{cid}/leaderboard", params={"limit": 200, **params})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def me(client: TestClient, cid: str, player: Any, **params: Any) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/contests/{cid}/leaderboard/me", params=params, headers=player.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def orgs(client: TestClient, cid: str, **params: Any) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/v1/contests/{cid}/orgs", params=params)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["entries"]


async def test_competition_ranks_on_every_page(client: TestClient) -> None:
    cid = await seed_custom(client)
    redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
    # (score, duration): ranks 1, 2, 2, 4, 4, 4, 7, 8 - equal score AND equal duration share a rank
    rows = [("u1", 50, 900), ("u2", 50, 1000), ("u3", 50, 1000), ("u4", 40, 10), ("u5", 40, 10), ("u6", 40, 10),
            ("u7", 40, 11), ("u8", 0, 0)]
    expected = {"u1": 1, "u2": 2, "u3": 2, "u4": 4, "u5": 4, "u6": 4, "u7": 7, "u8": 8}
    await redis.zadd(keys.board(cid), {u: encode(s, d) for u, s, d in rows})
    await redis.hset(keys.names(cid), mapping={u: f"李{u}\t{VA}" for u, _, _ in rows})
    await redis.aclose()
    full = await board(client, cid)
    assert [(e["user_id"], e["rank"]) for e in full["entries"]][:1] == [("u1", 1)]
    assert {e["user_id"]: e["rank"] for e in full["entries"]} == expected
    assert [(e["score"], e["duration_ms"]) for e in full["entries"]] == sorted(
        [(s, d) for _, s, d in rows], key=lambda x: (-x[0], x[1]))
    assert all(e["name"] == "李*" and e["org_name"] == "荷塘村" for e in full["entries"])
    order = [e["user_id"] for e in full["entries"]]
    for limit in (1, 2, 3):
        for offset in range(len(rows)):
            page = await board(client, cid, offset=offset, limit=limit)
            assert page["total"] == 8
            assert [(e["user_id"], e["rank"]) for e in page["entries"]] == [
                (u, expected[u]) for u in order[offset:offset + limit]], (offset, limit)


async def test_equal_score_shorter_duration_ranks_first(client: TestClient) -> None:
    cid = await seed_custom(client)
    quick, slow = await register(client, name="快"), await register(client, name="慢")
    for player, pause in ((slow, 0.15), (quick, 0.0)):
        _, attempt = await start(client, player, cid)
        for q in attempt["questions"][:3]:
            assert (await answer(client, player, attempt["attempt_id"], q["index"], "B"))[0] == 200
        await asyncio.sleep(pause)
        assert (await finish(client, player, attempt["attempt_id"]))[0] == 200
    entries = (await board(client, cid))["entries"]
    assert [(e["user_id"], e["rank"], e["score"]) for e in entries] == [(quick.user_id, 1, 30), (slow.user_id, 2, 30)]
    assert entries[0]["duration_ms"] < entries[1]["duration_ms"]


@pytest.mark.parametrize("ranking", ["best", "sum"])
async def test_best_and_sum_boards_total_daily_and_org(client: TestClient, ranking: str) -> None:
    cid = await seed_custom(client, ranking=ranking)
    a = await register(client, org_id=VA, name="赵一")
    b = await register(client, org_id=VB, name="钱二")
    c = await register(client, org_id=TUANJIE, name="孙三")
    d = await register(client, org_id=WANGJIA, name="李四")
    played: dict[str, list[dict[str, Any]]] = {}
    for player, rights in ((a, (3, 5, 1)), (b, (4,)), (c, (2, 2)), (d, (6,))):
        played[player.user_id] = [await submit_scored(client, player, cid, r) for r in rights]

    def standing(uid: str) -> tuple[int, int]:
        results = played[uid]
        if ranking == "sum":
            return sum(r["score"] for r in results), sum(r["duration_ms"] for r in results)
        top = max(results, key=lambda r: (r["score"], -r["duration_ms"]))
        return top["score"], top["duration_ms"]

    # equal (score, duration) share a rank; Redis lists such ties by member, descending
    by_member = sorted(((uid, *standing(uid)) for uid in played), key=lambda x: x[0], reverse=True)
    expect = sorted(by_member, key=lambda x: (-x[1], x[2]))
    if ranking == "best":
        assert [x[1] for x in expect] == [60, 50, 40, 20]
    else:
        assert [x[1] for x in expect] == [90, 60, 40, 40]
    for params in ({}, {"board": "daily"}):
        body = await board(client, cid, **params)
        assert body["total"] == 4
        assert [(e["user_id"], e["score"], e["duration_ms"]) for e in body["entries"]] == expect
        assert [e["rank"] for e in body["entries"]] == competition_ranks([x[1:] for x in expect])
        # the subtree of the town holds a, b; the county adds c; ranks are within the sub-board
        for org, members in ((VB, {b.user_id}), (TOWN, {a.user_id, b.user_id}),
                             (COUNTY, {a.user_id, b.user_id, c.user_id}), ("360000", set(played))):
            sub = await board(client, cid, org_id=org, **params)
            wanted = [x for x in expect if x[0] in members]
            assert [(e["user_id"], e["score"], e["duration_ms"]) for e in sub["entries"]] == wanted, org
            assert [e["rank"] for e in sub["entries"]] == competition_ranks([x[1:] for x in wanted])
            assert sub["total"] == len(wanted)
    other_day = await board(client, cid, board="daily", date="2001-01-01")
    assert other_day["total"] == 0 and other_day["entries"] == []
    # each finish reported the user's standing on the total board as it then was
    for uid, results in played.items():
        assert results[-1]["best_score"] == standing(uid)[0]


async def test_around_me(client: TestClient) -> None:
    cid = await seed_custom(client)
    players = [await register(client, name=f"王{n}") for n in range(7)]
    newcomer = await register(client, name="新人")
    mine = await me(client, cid, newcomer)
    assert mine["rank"] is None and mine["score"] is None and mine["around"] == [] and mine["percentile"] is None
    for n, player in enumerate(players):
        await submit_scored(client, player, cid, right=6 - n)  # scores 60, 50, ..., 0
    mine = await me(client, cid, players[3], around=2)
    assert mine["rank"] == 4 and mine["score"] == 30 and mine["total"] == 7
    assert mine["percentile"] == 50.0  # better than 3 of the 6 others
    assert [e["rank"] for e in mine["around"]] == [2, 3, 4, 5, 6]
    assert [e["user_id"] for e in mine["around"]] == [p.user_id for p in players[1:6]]
    me_entry = next(e for e in mine["around"] if e.get("me"))
    assert me_entry["name"] == "王3" and me_entry["user_id"] == players[3].user_id
    assert all(e["name"].endswith("*") for e in mine["around"] if not e.get("me"))
    top = await me(client, cid, players[0], around=3)
    assert top["rank"] == 1 and top["percentile"] == 100.0 and [e["rank"] for e in top["around"]] == [1, 2, 3, 4]
    assert (await me(client, cid, newcomer))["rank"] is None
    # the public board masks names, an admin sees them
    public = await board(client, cid, limit=1)
    assert public["entries"][0]["name"] == "王*"
    resp = await client.get(f"/api/v1/contests/{cid}/leaderboard", params={"limit": 1}, headers=admin_headers())
    assert (await resp.json())["entries"][0]["name"] == "王0"
    assert "phone" not in str(public)


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["org_id"]: r for r in rows}


async def _play_rollup_scenario(client: TestClient, cid: str) -> None:
    # 荷塘村: one user scores 30, another 50 then 10; 金竹村 40; 团结村 20; 王家村 (other city) 60
    for org, rights in ((VA, (3,)), (VA, (5, 1)), (VB, (4,)), (TUANJIE, (2,)), (WANGJIA, (6,))):
        player = await register(client, org_id=org)
        for r in rights:
            await submit_scored(client, player, cid, r)


async def test_org_rollups_best(client: TestClient) -> None:
    cid = await seed_custom(client)
    await _play_rollup_scenario(client, cid)
    # children of the town, by every key (best: total_score sums each user's best)
    va = {"org_id": VA, "level": 5, "members": 420, "participants": 2, "attempts": 3, "total_score": 80,
          "avg_score": 40.0, "participation_rate": round(2 / 420, 6), "name": "荷塘村"}
    vb = {"org_id": VB, "level": 5, "members": 80, "participants": 1, "attempts": 1, "total_score": 40,
          "avg_score": 40.0, "participation_rate": round(1 / 80, 6), "name": "金竹村"}
    for sort, order, ranks in (("participants", [va, vb], [1, 2]), ("total_score", [va, vb], [1, 2]),
                               ("avg_score", [va, vb], [1, 1]), ("participation_rate", [vb, va], [1, 2])):
        rows = await orgs(client, cid, parent_id=TOWN, sort=sort)
        assert rows == [{**row, "rank": rank} for row, rank in zip(order, ranks, strict=True)], sort
    # the default sort is participation rate; the roots' children are the cities
    cities = await orgs(client, cid, parent_id="360000")
    assert [(r["org_id"], r["rank"], r["participants"], r["members"]) for r in cities] == [
        (CITY, 1, 4, 2920), ("360100", 2, 1, 2520), ("360200", 3, 0, 1820)]
    assert cities[0]["participation_rate"] == round(4 / 2920, 6) and cities[0]["total_score"] == 140
    assert cities[0]["avg_score"] == 35.0 and cities[0]["attempts"] == 5
    county = _by_id(await orgs(client, cid, parent_id=CITY))[COUNTY]
    assert (county["participants"], county["attempts"], county["total_score"], county["members"]) == (4, 5, 140, 1590)
    # a whole level: villages by avg score and by participants, ties shared, idle ones last and tied
    villages = await orgs(client, cid, level=5, sort="avg_score", limit=30)
    assert len(villages) == 30
    assert (villages[0]["org_id"], villages[0]["rank"]) == (WANGJIA, 1)
    assert sorted((r["org_id"], r["rank"]) for r in villages[1:3]) == [(VA, 2), (VB, 2)]
    assert (villages[3]["org_id"], villages[3]["rank"]) == (TUANJIE, 4)
    assert {r["rank"] for r in villages[4:]} == {5} and all(r["participants"] == 0 for r in villages[4:])
    page = await orgs(client, cid, level=5, sort="avg_score", offset=10, limit=5)
    assert [r["rank"] for r in page] == [5] * 5  # a page among the idle orgs keeps the shared rank
    page = await orgs(client, cid, level=5, sort="avg_score", offset=2, limit=2)
    assert [r["rank"] for r in page] == [2, 4] and page[1]["org_id"] == TUANJIE  # a tie across the page edge
    by_count = await orgs(client, cid, level=5, sort="participants", limit=5)
    assert [(r["org_id"], r["rank"]) for r in by_count[:1]] == [(VA, 1)]
    assert sorted((r["org_id"], r["rank"]) for r in by_count[1:4]) == sorted([(VB, 2), (TUANJIE, 2), (WANGJIA, 2)])
    assert by_count[4]["rank"] == 5 and by_count[4]["participants"] == 0
    towns = await orgs(client, cid, level=4, sort="total_score", limit=4)
    assert [(r["org_id"], r["total_score"], r["rank"]) for r in towns[:3]] == [
        (TOWN, 120, 1), ("360101001", 60, 2), ("360302001", 20, 3)]
    assert towns[3]["total_score"] == 0 and towns[3]["rank"] == 4
    by_rate = await orgs(client, cid, level=4, sort="participation_rate", limit=3)
    assert [(r["org_id"], r["participation_rate"]) for r in by_rate] == [
        (TOWN, round(3 / 500, 6)), ("360101001", round(1 / 690, 6)), ("360302001", round(1 / 1090, 6))]
    # parent and level together: the county's towns only
    towns_of_county = await orgs(client, cid, parent_id=COUNTY, level=4, sort="participants")
    assert [(r["org_id"], r["participants"]) for r in towns_of_county] == [(TOWN, 3), ("360302001", 1)]


async def test_org_rollups_sum(client: TestClient) -> None:
    cid = await seed_custom(client, ranking="sum")
    await _play_rollup_scenario(client, cid)
    rows = _by_id(await orgs(client, cid, parent_id=TOWN, sort="total_score"))
    assert (rows[VA]["total_score"], rows[VA]["avg_score"], rows[VA]["attempts"]) == (90, 45.0, 3)
    assert (rows[VB]["total_score"], rows[VB]["avg_score"]) == (40, 40.0)
    assert [r["org_id"] for r in await orgs(client, cid, parent_id=TOWN, sort="avg_score")] == [VA, VB]
    level = await orgs(client, cid, level=3, sort="avg_score", limit=2)
    assert [(r["org_id"], r["avg_score"], r["rank"]) for r in level] == [("360101", 60.0, 1), (COUNTY, 37.5, 2)]


async def test_empty_query_values_mean_not_given(client: TestClient) -> None:
    """API.md writes its queries as `?board=total|daily&date=&org_id=&offset=0&limit=50`."""
    cid = await seed_custom(client)
    player = await register(client, org_id=VB)
    await submit_scored(client, player, cid, right=2)
    base = f"/api/v1/contests/{cid}"
    for query in ("board=total&date=&org_id=&offset=0&limit=50", "board=daily&date=&org_id=&offset=&limit=",
                  "board=&date=&org_id="):
        resp = await client.get(f"{base}/leaderboard?{query}")
        body = await resp.json()
        assert resp.status == 200 and [e["user_id"] for e in body["entries"]] == [player.user_id], (query, body)
    resp = await client.get(f"{base}/leaderboard/me?board=&around=", headers=player.headers)
    assert resp.status == 200 and (await resp.json())["rank"] == 1
    resp = await client.get(f"{base}/orgs?parent_id=&level=&sort=participation_rate&offset=&limit=")
    body = await resp.json()
    assert resp.status == 200 and [r["org_id"] for r in body["entries"]] == ["360000"]  # the roots


async def test_ranks_match_a_reference_on_random_boards(redis_client: aioredis.Redis) -> None:
    """Pages and around-me against a plain Python competition ranking, on boards full of ties."""
    runner = RedisPyScripts(redis_client)
    rng = random.Random(20261124)
    for _ in range(25):
        n = rng.randint(1, 40)
        members = {f"m{i}": (rng.choice([0, 10, 10, 20, 30, 30]), rng.choice([500, 500, 900, 1200])) for i in range(n)}
        await redis_client.delete("{t}:lb")
        await redis_client.zadd("{t}:lb", {m: encode(s, d) for m, (s, d) in members.items()})
        await redis_client.hset("{t}:names", mapping={m: f"名{m}\torg" for m in members})
        ranks = {m: 1 + sum(1 for o in members.values() if (-o[0], o[1]) < (-v[0], v[1])) for m, v in members.items()}
        page = await read_page(runner, "{t}:lb", "{t}:names", 0, 200)
        order = [e.user_id for e in page.entries]
        assert page.total == n and {e.user_id: e.rank for e in page.entries} == ranks
        assert [members[m] for m in order] == sorted(members.values(), key=lambda v: (-v[0], v[1]))
        for offset in range(n):
            limit = rng.randint(1, 7)
            part = await read_page(runner, "{t}:lb", "{t}:names", offset, limit)
            assert [(e.user_id, e.rank) for e in part.entries] == [(m, ranks[m]) for m in order[offset:offset + limit]]
        for m, (score, duration) in members.items():
            around = rng.randint(0, 4)
            mine = await read_me(runner, "{t}:lb", "{t}:names", m, around)
            assert (mine.rank, mine.score, mine.duration_ms, mine.total) == (ranks[m], score, duration, n)
            pos = order.index(m)
            window = order[max(0, pos - around):pos + around + 1]
            assert [(e.user_id, e.rank) for e in mine.around] == [(x, ranks[x]) for x in window]


async def test_lone_root_shares_the_contest_boards_and_daily_boards_expire(client: TestClient) -> None:
    """Issue 18: the lone province's boards are the total and daily boards (not stored twice), and a
    day's daily boards expire QUIZ_DAILY_BOARD_KEEP_S after the contest day; a review of an attempt
    of an expired day moves the total boards and leaves the expired day gone."""
    cid = await seed_custom(client, ranking="best")
    a = await register(client, org_id=VA, name="赵一")
    b = await register(client, org_id=WANGJIA, name="李四")
    first = await submit_scored(client, a, cid, 3)
    await submit_scored(client, b, cid, 5)
    redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
    try:
        pattern = keys.every_key_under(keys.contest_prefix(cid) + "lb:")
        names = {k.decode() async for k in redis.scan_iter(match=pattern)}
        assert not any(n.endswith(":o:360000") for n in names), names
        assert keys.board(cid, org_id=VA) in names and keys.board(cid, org_id="360000", lone_root="360000") in names
        days = [n for n in names if n.startswith(keys.board(cid, "")) and ":o:" not in n]
        assert len(days) == 1
        day = days[0].rsplit(":", 1)[1]
        expires = int(await redis.hget(keys.daily_expiry(cid), day) or 0)
        keep_ms = client.server.app[SETTINGS].daily_board_keep_s * 1000
        assert 0 < expires - int(time.time() * 1000) <= keep_ms + 86_400_000
        for name in names:
            ttl = await redis.pttl(name)
            if name.startswith(keys.board(cid, day)):
                assert abs(int(await redis.execute_command("PEXPIRETIME", name)) - expires) == 0, name
            elif name.startswith(keys.board(cid)):
                assert ttl == -1, name  # the total boards never expire
        # the day is over and its keep period too: its boards are gone (as their expiry does)
        await redis.hset(keys.daily_expiry(cid), day, int(time.time() * 1000) - 1)
        await redis.delete(*(n for n in names if n.startswith(keys.board(cid, day))))
        resp = await client.post(f"/api/v1/admin/contests/{cid}/attempts/{first['attempt_id']}/review",
                                 json={"action": "void", "reason": "too fast"}, headers=admin_headers())
        assert resp.status == 200, await resp.text()
        assert await redis.zscore(keys.board(cid), a.user_id) is None
        assert await redis.zscore(keys.board(cid, org_id=VA), a.user_id) is None
        assert not [k async for k in redis.scan_iter(match=pattern.replace("lb:*", f"lb:d:{day}*"))]
    finally:
        await redis.aclose()
    body = await board(client, cid, org_id="360000")
    assert [e["user_id"] for e in body["entries"]] == [b.user_id]
    assert (await board(client, cid, board="daily", date=day))["total"] == 0
