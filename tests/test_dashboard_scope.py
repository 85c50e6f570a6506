"""Dashboard scope (issue 16 item 8): after a drill-down every figure is for the subtree: stats
(answers, accuracy, questions) and the timeline take org_id."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.fixtures.app import admin_headers, seed_contest
from tests.fixtures.waiting import until

VILLAGE_A, VILLAGE_B, TOWN = "360302002001", "360302002002", "360302002"


async def _play(client: TestClient, user: dict[str, Any], cid: str, n: int) -> None:
    attempt = await (await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])).json()
    answers = [{"index": q["index"], "choice": q["options"][0]["key"]} for q in attempt["questions"][:n]]
    resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/submit", headers=user["headers"],
                             json={"answers": answers})
    assert resp.status == 200, await resp.text()


async def test_stats_and_timeline_are_scoped_to_the_subtree(client: TestClient) -> None:
    seeded = await seed_contest(client)
    cid, h = seeded.contest_id, admin_headers()
    await _play(client, await seeded.register(org_id=VILLAGE_A), cid, 3)
    await _play(client, await seeded.register(org_id=VILLAGE_A), cid, 2)
    await _play(client, await seeded.register(org_id=VILLAGE_B), cid, 4)

    async def stats(org_id: str | None = None) -> dict[str, Any]:
        resp = await client.get(f"/api/v1/admin/contests/{cid}/stats", params={"org_id": org_id} if org_id else {},
                                headers=h)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    whole = await stats()
    assert whole["answers"] == 9
    village = await until(lambda: _when(stats(VILLAGE_A), lambda s: s["answers"] == 5), within=10,
                          what="the village's answers in the database")
    assert village["attempts_finished"] == 2 and village["participants"] == 2
    assert sum(q["answers"] for q in village["questions"]) == 5
    assert 0 <= village["accuracy"] <= 1 and village["flagged_answers"] == 0
    town = await until(lambda: _when(stats(TOWN), lambda s: s["answers"] == 9), within=10, what="the town")
    assert town["attempts_finished"] == 3
    # the lone root is the whole contest: its figures are the contest-wide counters
    assert (await stats("360000"))["answers"] == 9

    resp = await client.get(f"/api/v1/admin/contests/{cid}/timeline", params={"org_id": VILLAGE_B}, headers=h)
    points = (await resp.json())["points"]
    assert sum(p["answers"] for p in points) == 4 and sum(p["attempts_finished"] for p in points) == 1
    resp = await client.get(f"/api/v1/admin/contests/{cid}/timeline", headers=h)
    assert sum(p["answers"] for p in (await resp.json())["points"]) == 9


async def _when(value: Any, test: Any) -> Any:
    got = await value
    return got if test(got) else None


async def test_the_database_aggregates_what_a_scan_counts(storage: Any) -> None:
    """SQLite and PostgreSQL: Storage.subtree_figures equals the row-by-row scan it replaces."""
    from contest.stats import _scan_subtree
    from tests.test_storage import seed_export_data

    await seed_export_data(storage)
    for prefix in ("/p1/", "/p1/c1/", "/p10/", "/nowhere/"):
        agg = await storage.subtree_figures("c1", prefix, 0)
        scan = await _scan_subtree(storage, "c1", prefix, 0)
        for key in ("questions", "answer_minutes", "finish_minutes"):
            agg[key], scan[key] = sorted(agg[key]), sorted(scan[key])
        assert agg == scan, prefix
    assert (await storage.subtree_figures("c1", "/p1/", 0))["answers"] > 0
