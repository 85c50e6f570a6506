"""End-to-end through the HTTP API: register, start, answer, finish, boards."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.fixtures.app import seed_contest


async def test_play_whole_attempt(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts", headers=user["headers"])
    assert resp.status == 201, await resp.text()
    attempt = await resp.json()
    assert len(attempt["questions"]) == 10
    for q in attempt["questions"]:
        choice = [q["options"][0]["key"]] if q["type"] == "multiple" else q["options"][0]["key"]
        resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/answers",
                                 json={"index": q["index"], "choice": choice}, headers=user["headers"])
        assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/finish", headers=user["headers"])
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert result["rank"] == 1
    resp = await client.get(f"/api/v1/contests/{seeded.contest_id}/leaderboard")
    board = await resp.json()
    assert board["total"] == 1 and board["entries"][0]["user_id"] == user["user_id"]
