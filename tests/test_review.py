"""Review: flagged attempts listed, voided / restored / cleared; boards and org rollups move at once;
the durable record keeps the attempt and every decision; exports can leave flagged attempts out."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import FLUSHER, SETTINGS
from contest.review import latest_decisions
from contest.storage.base import Storage
from leaderboard import keys
from tests.fixtures.app import admin_headers, seed_contest
from tests.test_attempts import TOWN, VILLAGE_A, VILLAGE_B, play
from tests.test_storage import T0, attempt_events, user_ev, void_ev

ClientFactory = Callable[..., Any]
CITY = "360300"


async def drain(client: TestClient) -> None:
    """Let the flusher commit everything the streams hold."""
    flusher = client.server.app[FLUSHER]
    assert flusher is not None
    while await flusher.flush_once():
        pass


async def decide(client: TestClient, cid: str, aid: str, action: str, reason: str = "too fast") -> Any:
    resp = await client.post(f"/api/v1/admin/contests/{cid}/attempts/{aid}/review",
                             json={"action": action, "reason": reason}, headers=admin_headers())
    return resp.status, await resp.json()


async def standing(client: TestClient, cid: str, uid: str) -> dict[str, Any]:
    """What every board and rollup says about one user (straight from Redis)."""
    redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
    try:
        total = await redis.zscore(keys.board(cid), uid)
        org = await redis.zscore(keys.board(cid, org_id=VILLAGE_A), uid)
        town = await redis.zscore(keys.board(cid, org_id=TOWN), uid)
        days = [k async for k in redis.scan_iter(match=keys.board(cid, "*").replace("{", "\\{").replace("}", "\\}"))]
        daily = [await redis.zscore(k, uid) for k in days if b":o:" not in k]
        os_s = int(await redis.hget(keys.org_stat(cid, "s"), VILLAGE_A) or 0)
        os_p = int(await redis.hget(keys.org_stat(cid, "p"), VILLAGE_A) or 0)
        rank_s = await redis.zscore(keys.org_level_rank(cid, "total_score", 5), VILLAGE_A)
        participants = int(await redis.hget(keys.stats(cid), "participants") or 0)
    finally:
        await redis.aclose()

    def score(v: float | None) -> int | None:
        return None if v is None else int(v) >> 32

    return {"total": score(total), "org": score(org), "town": score(town), "daily": [score(d) for d in daily],
            "org_sum": os_s, "org_participants": os_p, "org_rank_sum": rank_s, "participants": participants}


async def test_void_best_falls_back_to_the_next_best_attempt_and_restore_undoes_it(
        app_factory: ClientFactory) -> None:
    async with app_factory() as client:
        seeded = await seed_contest(client, ranking="best")
        cid = seeded.contest_id
        user = await seeded.register(org_id=VILLAGE_A)
        other = await seeded.register(org_id=VILLAGE_B)
        high = await play(client, user, seeded, right=9)
        low = await play(client, user, seeded, right=4)
        mid = await play(client, other, seeded, right=6)
        assert high["score"] > mid["score"] > low["score"] > 0
        before = await standing(client, cid, user["user_id"])
        assert before["total"] == before["org"] == before["town"] == high["score"]
        assert before["org_sum"] == high["score"] and before["org_rank_sum"] == high["score"]

        status, body = await decide(client, cid, high["attempt_id"], "void")
        assert status == 200 and body["changed"] is True
        assert (body["board_score_before"], body["board_score_after"]) == (high["score"], low["score"])
        after = await standing(client, cid, user["user_id"])
        assert after["total"] == after["org"] == after["town"] == low["score"]
        assert after["daily"] == [low["score"]]
        assert after["org_sum"] == low["score"] and after["org_rank_sum"] == low["score"]
        assert after["participants"] == before["participants"] == 2  # still a participant (one attempt left)
        page = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
        assert [e["user_id"] for e in page["entries"]] == [other["user_id"], user["user_id"]]

        # deciding the same thing twice changes nothing
        status, again = await decide(client, cid, high["attempt_id"], "void")
        assert status == 200 and again["changed"] is False
        status, body = await decide(client, cid, high["attempt_id"], "restore", "appeal granted")
        assert status == 200 and body["changed"] is True
        assert await standing(client, cid, user["user_id"]) == before


async def test_void_sum_subtracts_and_the_last_attempt_leaves_every_board(app_factory: ClientFactory) -> None:
    async with app_factory() as client:
        seeded = await seed_contest(client, ranking="sum")
        cid = seeded.contest_id
        user = await seeded.register(org_id=VILLAGE_A)
        first = await play(client, user, seeded, right=7)
        second = await play(client, user, seeded, right=3)
        before = await standing(client, cid, user["user_id"])
        assert before["total"] == first["score"] + second["score"] == before["org_sum"]

        assert (await decide(client, cid, first["attempt_id"], "void"))[0] == 200
        mid = await standing(client, cid, user["user_id"])
        assert mid["total"] == mid["org"] == mid["daily"][0] == second["score"] == mid["org_sum"]

        assert (await decide(client, cid, second["attempt_id"], "void"))[0] == 200
        gone = await standing(client, cid, user["user_id"])
        assert gone["total"] is None and gone["org"] is None and gone["town"] is None and gone["daily"] == []
        assert gone["org_sum"] == 0 and gone["org_participants"] == 0 and gone["participants"] == 0
        orgs = await (await client.get(f"/api/v1/contests/{cid}/orgs", params={"parent_id": TOWN})).json()
        village = next(e for e in orgs["entries"] if e["org_id"] == VILLAGE_A)
        assert village["participants"] == 0 and village["total_score"] == 0

        # a new attempt after the voids counts as usual
        third = await play(client, user, seeded, right=5)
        assert (await standing(client, cid, user["user_id"]))["total"] == third["score"]
        assert (await decide(client, cid, first["attempt_id"], "restore"))[0] == 200
        final = await standing(client, cid, user["user_id"])
        assert final["total"] == first["score"] + third["score"] == final["org_sum"]
        assert final["participants"] == 1 and final["org_participants"] == 1


async def test_flagged_list_stats_export_and_audit_log(app_factory: ClientFactory) -> None:
    async with app_factory() as client:
        # a human minimum nobody meets: every answer is flagged
        seeded = await seed_contest(client, min_answer_ms=60_000)
        cid = seeded.contest_id
        cheat = await seeded.register(org_id=VILLAGE_A)
        result = await play(client, cheat, seeded, right=10)
        aid = result["attempt_id"]
        stats = await (await client.get(f"/api/v1/admin/contests/{cid}/stats", headers=admin_headers())).json()
        assert stats["flagged_answers"] == result["question_count"]
        await drain(client)

        listed = await (await client.get(f"/api/v1/admin/contests/{cid}/flagged", headers=admin_headers())).json()
        assert [e["attempt_id"] for e in listed["entries"]] == [aid]
        entry = listed["entries"][0]
        assert entry["flagged_answers"] == result["question_count"] and entry["review"] is None
        assert entry["voided"] is False

        async def results(**params: str) -> list[dict[str, str]]:
            resp = await client.get(f"/api/v1/admin/contests/{cid}/export",
                                    params={"what": "results"} | params, headers=admin_headers())
            assert resp.status == 200
            return list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))

        assert [r["attempt_id"] for r in await results()] == [aid]
        assert await results(exclude_flagged="1") == []  # not a prize winner until reviewed
        answers = await results(what="answers")
        assert len(answers) == result["question_count"] and {a["flagged"] for a in answers} == {"1"}

        status, _ = await decide(client, cid, aid, "clear", "checked the video: a quiz champion")
        assert status == 200
        await drain(client)
        assert [r["attempt_id"] for r in await results(exclude_flagged="1")] == [aid]
        pending = await (await client.get(f"/api/v1/admin/contests/{cid}/flagged", params={"pending": "1"},
                                          headers=admin_headers())).json()
        assert pending["entries"] == []

        status, _ = await decide(client, cid, aid, "void", "second look: a bot after all")
        assert status == 200
        status, body = await decide(client, cid, aid, "clear")
        assert status == 409 and body["error"]["code"] == "conflict"  # restore first
        await drain(client)
        stats = await (await client.get(f"/api/v1/admin/contests/{cid}/stats", headers=admin_headers())).json()
        assert stats["voided_attempts"] == 1 and stats["flagged_answers"] == result["question_count"]
        rows = await results()
        assert rows[0]["voided"] == "1" and rows[0]["score"] == str(result["score"])  # the attempt is kept
        assert await results(exclude_flagged="1") == []
        log = await (await client.get(f"/api/v1/admin/contests/{cid}/reviews", headers=admin_headers())).json()
        assert [(e["action"], e["by"]) for e in log["entries"]] == [("clear", "admin"), ("void", "admin")]
        assert log["entries"][1]["reason"] == "second look: a bot after all"


async def test_rebuild_keeps_a_voided_attempt_off_the_boards(app_factory: ClientFactory) -> None:
    async with app_factory() as client:
        seeded = await seed_contest(client, ranking="best")
        cid = seeded.contest_id
        user = await seeded.register(org_id=VILLAGE_A)
        high = await play(client, user, seeded, right=8)
        low = await play(client, user, seeded, right=2)
        await decide(client, cid, high["attempt_id"], "void")
        await drain(client)
        expected = await standing(client, cid, user["user_id"])
        resp = await client.post(f"/api/v1/admin/contests/{cid}/rebuild", headers=admin_headers())
        assert resp.status == 200 and (await resp.json())["voided"] == 1
        rebuilt = await standing(client, cid, user["user_id"])
        assert rebuilt["total"] == low["score"]
        assert rebuilt == expected


async def test_review_input_is_checked(client: TestClient) -> None:
    seeded = await seed_contest(client)
    cid = seeded.contest_id
    user = await seeded.register()
    running = (await (await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])).json())
    status, body = await decide(client, cid, running["attempt_id"], "void")
    assert status == 409 and body["error"]["details"]["state"] == "running"
    path = f"/api/v1/admin/contests/{cid}/attempts/{cid}.nosuch/review"
    resp = await client.post(path, json={"action": "explode"}, headers=admin_headers())
    assert resp.status == 400 and "action" in (await resp.json())["error"]["details"]["fields"]
    resp = await client.post(path, json={"action": "void"}, headers=admin_headers())
    assert resp.status == 400  # a void needs a reason
    resp = await client.post(path, json={"action": "void", "reason": "x"}, headers=admin_headers())
    assert resp.status == 404
    resp = await client.post(f"/api/v1/admin/contests/{cid}/attempts/other.abc/review",
                             json={"action": "clear"}, headers=admin_headers())
    assert resp.status == 404


async def test_storage_keeps_the_attempt_and_every_decision(storage: Storage) -> None:
    events = [user_ev("7"), *attempt_events("c1.a", "7")]
    clear = {**void_ev("c1.a", undo=1, at=T0 + 9500), "action": "clear", "reason": "fine"}
    await storage.write_events([*events, void_ev("c1.a"), clear])
    await storage.write_events([void_ev("c1.a")])  # a replayed entry is stored once
    row = await storage.load_attempt("c1.a")
    assert row is not None and row["user_id"] == "7" and row["voided"] == 0 and row["score"] == 10
    assert await storage.load_attempt("c1.nope") is None
    log = await storage.load_reviews("c1")
    assert [(r["action"], r["reason"]) for r in log] == [("void", "cheating"), ("clear", "fine")]
    assert latest_decisions(log)["c1.a"]["action"] == "clear"
    await storage.write_events([void_ev("c1.a", at=T0 + 20_000)])
    assert (await storage.load_attempt("c1.a"))["voided"] == 1
