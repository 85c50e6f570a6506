"""Remaining attempts on the contest detail (issue 15 item 4): what a signed-in participant has left."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from tests.fixtures.app import seed_contest


async def test_detail_tells_a_participant_what_is_left(client: TestClient) -> None:
    seeded = await seed_contest(client, attempts_per_day=2, attempts_total=3)
    cid = seeded.contest_id
    user = await seeded.register()
    resp = await client.get(f"/api/v1/contests/{cid}")
    anonymous = await resp.json()
    assert resp.status == 200 and "attempts_left_today" not in anonymous
    resp = await client.get(f"/api/v1/contests/{cid}", headers=user["headers"])
    body = await resp.json()
    assert (body["attempts_left_today"], body["attempts_left_total"], body["next_attempt_at"],
            body["best_score"]) == (2, 3, None, None)
    for _ in range(2):
        resp = await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])
        aid = (await resp.json())["attempt_id"]
        resp = await client.post(f"/api/v1/attempts/{aid}/finish", headers=user["headers"])
        assert resp.status == 200
    resp = await client.get(f"/api/v1/contests/{cid}", headers=user["headers"])
    body = await resp.json()
    assert (body["attempts_left_today"], body["attempts_left_total"], body["best_score"]) == (0, 1, 0)
    # the next contest day starts at 00:00 Asia/Shanghai; the seeded contest ends within the hour, so
    # unless that midnight falls inside it there is no next attempt to announce
    tz = ZoneInfo("Asia/Shanghai")
    tomorrow = dt.datetime.combine(dt.datetime.now(tz).date() + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    expected = int(tomorrow.timestamp() * 1000)
    contest = await (await client.get(f"/api/v1/contests/{cid}")).json()
    assert body["next_attempt_at"] == (expected if expected < contest["ends_at"] else None)


async def test_next_attempt_at_is_the_next_contest_day(client: TestClient) -> None:
    seeded = await seed_contest(client, attempts_per_day=1, attempts_total=0,
                                ends_at=4_000_000_000_000, timezone="Asia/Shanghai")
    cid = seeded.contest_id
    user = await seeded.register()
    resp = await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])
    aid = (await resp.json())["attempt_id"]
    await client.post(f"/api/v1/attempts/{aid}/finish", headers=user["headers"])
    body = await (await client.get(f"/api/v1/contests/{cid}", headers=user["headers"])).json()
    tz = ZoneInfo("Asia/Shanghai")
    tomorrow = dt.datetime.combine(dt.datetime.now(tz).date() + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    assert body["attempts_left_today"] == 0 and body["attempts_left_total"] is None
    assert body["next_attempt_at"] == int(tomorrow.timestamp() * 1000)
    resp = await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])
    assert resp.status == 409


async def test_a_stale_token_still_gets_the_public_detail(client: TestClient) -> None:
    seeded = await seed_contest(client)
    resp = await client.get(f"/api/v1/contests/{seeded.contest_id}", headers={"Authorization": "Bearer forged.token"})
    body = await resp.json()
    assert resp.status == 200 and "attempts_left_today" not in body and body["title"]
