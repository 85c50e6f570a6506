"""Every status and error code of the participant endpoints; atomic attempt limits; the sweeper's
exactly-once auto-finish with several app instances on one Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import CATALOG, PLAY, REDIS, STORAGE, SWEEPER
from contest.auth import issue_token
from contest.web.app import create_app
from contest.workers.sweeper import Sweeper
from leaderboard import keys
from tests.fixtures.app import LaneTestServer, admin_headers, bearer, make_settings
from tests.fixtures.play import answer, create_contest, finish, register, seed_custom, start

P = "/api/v1"


@pytest.fixture
async def client(redis_url: str, data_dir: Path) -> AsyncIterator[TestClient]:
    """The app with per-user rate limits off: these tests hammer one user on purpose."""
    flush = aioredis.Redis.from_url(redis_url)
    await flush.flushall()
    await flush.aclose()
    test_client = TestClient(LaneTestServer(create_app(make_settings(redis_url, data_dir, rate_limits=False))))
    await test_client.start_server()
    yield test_client
    await test_client.close()


async def expect(resp: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    if field is not None:
        assert field in body["error"]["details"]["fields"], body
    return body["error"]


async def test_401_missing_forged_expired_token(client: TestClient, app_secret: bytes) -> None:
    cid = await seed_custom(client)
    player = await register(client)
    _, attempt = await start(client, player, cid)
    aid = attempt["attempt_id"]
    payload, _, signature = player.token.partition(".")
    expired, _ = issue_token(app_secret, user_id=player.user_id, role="participant", org_id=player.org_id,
                             name="x", ttl_s=-5)
    cases = [
        ({}, "unauthenticated"),
        ({"Authorization": "Basic abc"}, "unauthenticated"),
        ({"Authorization": "Bearer "}, "unauthenticated"),
        (bearer(payload + "." + signature[:-2] + "xx"), "unauthenticated"),
        (bearer("A" + player.token), "unauthenticated"),
        (bearer(expired), "token_expired"),
    ]
    calls = [("POST", f"{P}/contests/{cid}/attempts", None), ("GET", f"{P}/attempts/{aid}", None),
             ("POST", f"{P}/attempts/{aid}/answers", {"index": 0, "choice": "B"}),
             ("POST", f"{P}/attempts/{aid}/finish", None),
             ("POST", f"{P}/attempts/{aid}/submit", {"answers": []}),
             ("GET", f"{P}/contests/{cid}/leaderboard/me", None)]
    for headers, code in cases:
        for method, url, body in calls:
            await expect(await client.request(method, url, json=body, headers=headers), 401, code)
    # an organizer is not a participant
    organizer, _ = issue_token(app_secret, user_id="o", role="organizer", org_id="360000", name="o", ttl_s=60)
    await expect(await client.post(f"{P}/contests/{cid}/attempts", headers=bearer(organizer)), 403, "forbidden")
    # nothing of this touched the attempt
    status, body = await answer(client, player, aid, 0, "B")
    assert status == 200 and body["score"] == 10


async def _until_past(instant_ms: int) -> None:
    """Wait for the clock instant a test is about (a deadline; the server and Redis read the same
    clock), not for a duration that is hopefully long enough."""
    for _ in range(100):  # a timer may fire a hair early: look at the clock again
        if (left_ms := instant_ms + 1 - time.time() * 1000) <= 0:
            return
        await asyncio.sleep(left_ms / 1000)
    raise AssertionError("the clock did not reach the instant")


@pytest.fixture
def app_secret(client: TestClient) -> bytes:
    from contest.appkeys import SETTINGS

    return client.server.app[SETTINGS].signing_secret


async def test_403_contest_closed_before_and_after_the_window(client: TestClient) -> None:
    now = int(time.time() * 1000)
    upcoming = await seed_custom(client, starts_at=now + 3_600_000, ends_at=now + 7_200_000)
    ended = await create_contest(client, starts_at=now - 7_200_000, ends_at=now - 3_600_000)
    player = await register(client)
    for cid in (upcoming, ended):
        error = await expect(await client.post(f"{P}/contests/{cid}/attempts", headers=player.headers), 403,
                             "contest_closed")
        assert set(error["details"]) == {"starts_at", "ends_at"}
    # the window's end also ends a running attempt: its deadline is the contest's end
    closing = await create_contest(client, ends_at=int(time.time() * 1000) + 1500, time_limit_s=600)
    status, attempt = await start(client, player, closing)
    assert status == 201 and attempt["deadline_at"] <= now + 10_000
    await _until_past(attempt["deadline_at"])
    await expect(await client.post(f"{P}/contests/{closing}/attempts", headers=player.headers), 403, "contest_closed")
    status, body = await answer(client, player, attempt["attempt_id"], 0, "B")
    assert status == 410 and body["error"]["code"] == "deadline_passed"


async def test_404_unknown_contest_attempt_and_other_users_attempt(client: TestClient) -> None:
    cid = await seed_custom(client)
    owner, other = await register(client), await register(client)
    _, attempt = await start(client, owner, cid)
    aid = attempt["attempt_id"]
    h = other.headers
    for url in (f"{P}/contests/nope", f"{P}/contests/nope/leaderboard", f"{P}/contests/nope/orgs"):
        await expect(await client.get(url), 404, "not_found")
    await expect(await client.post(f"{P}/contests/nope/attempts", headers=h), 404, "not_found")
    # a draft contest is not there for participants
    resp = await client.post(f"{P}/admin/contests", headers=admin_headers(), json={
        "title": "草稿", "starts_at": int(time.time() * 1000) - 1000, "ends_at": int(time.time() * 1000) + 60_000,
        "paper": {"draw": [{"category": "T单", "count": 1}]}})
    draft = (await resp.json())["contest_id"]
    await expect(await client.post(f"{P}/contests/{draft}/attempts", headers=h), 404, "not_found")
    bogus = [f"{cid}.nosuchattempt", "garbage", f"nope.{aid.split('.', 1)[1]}", f"{cid}.1.x.y", aid]
    for bad in bogus:  # the last one is the owner's attempt seen by another user
        await expect(await client.get(f"{P}/attempts/{bad}", headers=h), 404, "not_found")
        await expect(await client.post(f"{P}/attempts/{bad}/answers", json={"index": 0, "choice": "B"}, headers=h),
                     404, "not_found")
        await expect(await client.post(f"{P}/attempts/{bad}/finish", headers=h), 404, "not_found")
        await expect(await client.post(f"{P}/attempts/{bad}/submit", json={"answers": [{"index": 0, "choice": "B"}]},
                                       headers=h), 404, "not_found")
    await expect(await client.get(f"{P}/contests/{cid}/leaderboard", params={"org_id": "999"}), 404, "not_found")
    await expect(await client.get(f"{P}/contests/{cid}/orgs", params={"parent_id": "999"}), 404, "not_found")
    # the other user's failed calls changed nothing
    state = await (await client.get(f"{P}/attempts/{aid}", headers=owner.headers)).json()
    assert state["answered"] == [] and state["finished"] is False


async def test_409_already_answered_is_idempotent_and_race_free(client: TestClient) -> None:
    cid = await seed_custom(client)
    player = await register(client)
    _, attempt = await start(client, player, cid)
    aid = attempt["attempt_id"]
    # two phones send different choices for one question at once: exactly one wins
    replies = await asyncio.gather(*(answer(client, player, aid, 0, c) for c in ("A", "B", "C", "D") * 3))
    winners = {body["points_awarded"] for status, body in replies if status == 200}
    losers = [body for status, body in replies if status == 409]
    assert len(winners) == 1 and len(losers) == 9
    assert all(b["error"]["code"] == "already_answered" for b in losers)
    state = await (await client.get(f"{P}/attempts/{aid}", headers=player.headers)).json()
    assert len(state["answered"]) == 1 and state["score"] == winners.pop()
    # the same choice again is the same answer, identical even after later answers moved the score
    first_choice = state["answered"][0]["choice"]
    status, first = await answer(client, player, aid, 0, first_choice)
    assert status == 200
    assert (await answer(client, player, aid, 1, "B"))[0] == 200
    status, replay = await answer(client, player, aid, 0, first_choice)
    assert status == 200 and replay == first
    # after finishing, new answers are refused
    status, first = await finish(client, player, aid)
    status2, again = await finish(client, player, aid)
    assert status == status2 == 200 and first == again
    status, body = await answer(client, player, aid, 2, "B")
    assert status == 409 and body["error"]["code"] == "already_finished"


async def test_409_attempt_limits_total_and_per_day(client: TestClient) -> None:
    per_day = await seed_custom(client, attempts_per_day=2, attempts_total=5)
    total = await create_contest(client, attempts_per_day=3, attempts_total=2)
    player = await register(client)
    for cid, which in ((per_day, "day"), (total, "total")):
        for _ in range(2):
            status, attempt = await start(client, player, cid)
            assert status == 201
            assert (await finish(client, player, attempt["attempt_id"]))[0] == 200
        error = await expect(await client.post(f"{P}/contests/{cid}/attempts", headers=player.headers), 409,
                             "attempt_limit_reached")
        assert error["details"] == {"limit": which}


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
async def test_days_are_counted_in_the_contest_timezone(client: TestClient, tz: str) -> None:
    """UTC+14 and UTC-11: at any hour at least one of them is on another date than UTC."""
    cid = await seed_custom(client, timezone=tz, attempts_per_day=1)
    player = await register(client)
    status, attempt = await start(client, player, cid)
    assert status == 201
    today = dt.datetime.now(ZoneInfo(tz)).date().isoformat()
    redis = client.server.app[PLAY].redis
    assert (await redis.hget(keys.attempt(cid, attempt["attempt_id"]), "day")).decode() == today
    await finish(client, player, attempt["attempt_id"])
    assert await redis.hget(keys.user_contest(cid, player.user_id), f"n:{today}") == b"1"
    await expect(await client.post(f"{P}/contests/{cid}/attempts", headers=player.headers), 409,
                 "attempt_limit_reached")
    # yesterday's attempts (in the contest's timezone) do not use up today's
    other = await register(client)
    yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
    await redis.hset(keys.user_contest(cid, other.user_id), mapping={"n": 1, f"n:{yesterday}": 1})
    assert (await start(client, other, cid))[0] == 201
    resp = await client.get(f"{P}/contests/{cid}/leaderboard", params={"board": "daily"})
    body = await resp.json()
    assert body["date"] == today and body["total"] == 1


async def test_410_attempt_deadline_and_question_limit(client: TestClient) -> None:
    timed = await seed_custom(client, time_limit_s=1)
    per_question = await create_contest(client, question_time_limit_s=1, time_limit_s=60)
    a, b = await register(client), await register(client)
    _, attempt = await start(client, a, timed)
    aid = attempt["attempt_id"]
    _, qattempt = await start(client, b, per_question)
    qaid = qattempt["attempt_id"]
    assert (await answer(client, a, aid, 0, "B"))[0] == 200
    assert (await answer(client, b, qaid, 0, "B"))[0] == 200
    # until both clocks have run out: the attempt's (1 s from its start) and the question's (1 s)
    await _until_past(max(attempt["deadline_at"], qattempt["started_at"] + 1000))
    # the attempt's clock: answer and finish are late; the finish reports the result anyway
    status, body = await answer(client, a, aid, 1, "B")
    assert status == 410 and body["error"]["code"] == "deadline_passed"
    error = await expect(await client.post(f"{P}/attempts/{aid}/finish", headers=a.headers), 410, "deadline_passed")
    result = error["details"]["result"]
    assert result["score"] == 10 and result["finished_at"] == attempt["deadline_at"]
    assert result["duration_ms"] == attempt["deadline_at"] - attempt["started_at"]
    error = await expect(await client.post(f"{P}/attempts/{aid}/submit", json={"answers": []}, headers=a.headers),
                         410, "deadline_passed")
    state = await (await client.get(f"{P}/attempts/{aid}", headers=a.headers)).json()
    assert state["finished"] is True and state["score"] == 10
    # the question's clock: question 1 ran out (recorded unanswered), question 2's clock starts now
    status, body = await answer(client, b, qaid, 1, "B")
    assert status == 410 and body["error"]["code"] == "deadline_passed"
    status, body = await answer(client, b, qaid, 1, "B")
    assert status == 410
    status, body = await answer(client, b, qaid, 2, "B")
    assert status == 200 and body["score"] == 20
    state = await (await client.get(f"{P}/attempts/{qaid}", headers=b.headers)).json()
    assert [(x["index"], x["choice"]) for x in state["answered"]] == [(0, "B"), (1, None), (2, "B")]
    status, done = await finish(client, b, qaid)
    assert status == 200 and done["score"] == 20
    # the stream carries each answer as one packed field (leaderboard/entries.py), the run-out
    # question too, and the flusher hands those values to COPY as they are: the rows say what the
    # API said (the app's own flusher may have taken entries off the stream already)
    entries = await client.server.app[REDIS].xrange(keys.events(per_question))
    assert not [f for _, f in entries if f.get(b"t") == b"ans"]
    expected = [(qaid, 0, b.user_id, "B", 1, 10), (qaid, 1, b.user_id, "", 0, 0), (qaid, 2, b.user_id, "B", 1, 10)]
    expected_at = [x["answered_at"] for x in state["answered"]]
    for _ in range(200):
        rows = [r async for r in client.server.app[STORAGE].load_answers(per_question)]
        if len(rows) == 3:
            break
        await asyncio.sleep(0.05)
    assert [(r["attempt_id"], r["idx"], r["user_id"], r["choice"], r["correct"], r["points_awarded"])
            for r in rows] == expected
    assert [r["answered_at"] for r in rows] == expected_at


async def test_400_every_bad_field(client: TestClient) -> None:
    paper = {"draw": [{"category": "T单", "count": 2}, {"category": "T多", "count": 2}], "shuffle_questions": False,
             "shuffle_options": False}
    cid = await seed_custom(client, paper=paper)
    player = await register(client)
    _, attempt = await start(client, player, cid)
    aid = attempt["attempt_id"]
    single = next(q["index"] for q in attempt["questions"] if q["type"] == "single")
    multiple = next(q["index"] for q in attempt["questions"] if q["type"] == "multiple")
    url = f"{P}/attempts/{aid}/answers"
    bad_bodies = [
        ({"choice": "B"}, "index"), ({"index": "0", "choice": "B"}, "index"), ({"index": -1, "choice": "B"}, "index"),
        ({"index": 200, "choice": "B"}, "index"), ({"index": True, "choice": "B"}, "index"),
        ({"index": 1.5, "choice": "B"}, "index"), ({"index": 99, "choice": "B"}, "index"),
        ({"index": single}, "choice"), ({"index": single, "choice": None}, "choice"),
        ({"index": single, "choice": 5}, "choice"), ({"index": single, "choice": []}, "choice"),
        ({"index": single, "choice": ["A", "a"]}, "choice"), ({"index": single, "choice": "Z"}, "choice"),
        ({"index": single, "choice": ""}, "choice"), ({"index": single, "choice": [1]}, "choice"),
        ({"index": single, "choice": ["A", "B"]}, "choice"), ({"index": single, "choice": "E"}, "choice"),
        ({"index": multiple, "choice": ["A", "E"]}, "choice"),
    ]
    for body, field in bad_bodies:
        await expect(await client.post(url, json=body, headers=player.headers), 400, "validation_failed", field)
    for raw in (b"{nope", b"[1,2]", b"", b'"B"'):
        await expect(await client.post(url, data=raw, headers=player.headers), 400, "invalid_json")
    submit = f"{P}/attempts/{aid}/submit"
    bad_submits = [
        ({}, "answers"), ({"answers": "x"}, "answers"), ({"answers": [1]}, "answers[0]"),
        ({"answers": [{"index": 0, "choice": "B"}, {"index": 0, "choice": "B"}]}, "answers[1].index"),
        ({"answers": [{"index": 0, "choice": "Q"}]}, "answers[0].choice"),
        ({"answers": [{"index": "x", "choice": "B"}]}, "answers[0].index"),
    ]
    for body, field in bad_submits:
        await expect(await client.post(submit, json=body, headers=player.headers), 400, "validation_failed", field)
    board = f"{P}/contests/{cid}/leaderboard"
    for params, field in (({"board": "weekly"}, "board"), ({"board": "daily", "date": "2020-02-30"}, "date"),
                          ({"offset": "-1"}, "offset"), ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
                          ({"limit": "ten"}, "limit")):
        await expect(await client.get(board, params=params), 400, "validation_failed", field)
    await expect(await client.get(f"{board}/me", params={"around": "51"}, headers=player.headers), 400,
                 "validation_failed", "around")
    orgs = f"{P}/contests/{cid}/orgs"
    for params, field in (({"sort": "name"}, "sort"), ({"level": "0"}, "level"), ({"level": "6"}, "level"),
                          ({"limit": "0"}, "limit"), ({"offset": "x"}, "offset")):
        await expect(await client.get(orgs, params=params), 400, "validation_failed", field)
    # none of it reached the attempt
    state = await (await client.get(f"{P}/attempts/{aid}", headers=player.headers)).json()
    assert state["answered"] == []


async def _phone(client: TestClient, player: Any, cid: str) -> list[str]:
    """Start and finish until the limit says no; returns the attempts this phone created."""
    created = []
    while True:
        status, body = await start(client, player, cid)
        if status == 409:
            assert body["error"]["code"] == "attempt_limit_reached"
            return created
        assert status in (200, 201), body
        if status == 201:
            created.append(body["attempt_id"])
        await finish(client, player, body["attempt_id"])


async def test_concurrent_starts_never_pass_the_limit(client: TestClient) -> None:
    cid = await seed_custom(client, attempts_total=5)
    daily = await create_contest(client, attempts_per_day=3)
    for contest, limit in ((cid, 5), (daily, 3)):
        player = await register(client)
        # twenty phones of one user, each starting and finishing as fast as it can
        runs = await asyncio.gather(*(_phone(client, player, contest) for _ in range(20)))
        created = [aid for run in runs for aid in run]
        assert len(created) == len(set(created)) == limit
        redis = client.server.app[PLAY].redis
        assert await redis.hget(keys.user_contest(contest, player.user_id), "n") == str(limit).encode()
        resp = await client.get(f"{P}/admin/contests/{contest}/stats", headers=admin_headers())
        assert (await resp.json())["attempts_started"] == limit
    # and twenty simultaneous first starts of a fresh user make one attempt, resumed by the rest
    player = await register(client)
    replies = await asyncio.gather(*(start(client, player, cid) for _ in range(20)))
    assert sorted(s for s, _ in replies) == [200] * 19 + [201]
    assert len({body["attempt_id"] for _, body in replies}) == 1


async def test_auto_finish_exactly_once_across_app_instances(
    client: TestClient, redis_url: str, tmp_path: Path
) -> None:
    cid = await seed_custom(client, time_limit_s=1)
    others = []
    for n in range(2):  # two more app instances on the same Redis, sweeping every 20 ms
        settings = make_settings(redis_url, tmp_path / f"app{n}", run_flusher=False, sweep_interval_ms=20,
                                 rate_limits=False)
        settings.data_dir.mkdir()
        other = TestClient(LaneTestServer(create_app(settings)))
        await other.start_server()
        others.append(other)
    try:
        players = [await register(client, name=f"选手{n}") for n in range(12)]
        attempts = []
        for n, player in enumerate(players):
            _, attempt = await start(client, player, cid)
            attempts.append(attempt)
            for index in range(n % 3):
                assert (await answer(client, player, attempt["attempt_id"], index, "B"))[0] == 200
        apps = [client.server.app] + [o.server.app for o in others]
        for app in apps[1:]:  # the new instances learn of the contest from Redis
            for _ in range(100):
                if cid in app[CATALOG].contests:
                    break
                await asyncio.sleep(0.02)
            assert cid in app[CATALOG].contests
        await _until_past(max(a["deadline_at"] for a in attempts))
        # racing by hand too: every instance's sweeper and direct auto-finishes at once
        sweeps = [Sweeper(app[PLAY], app[CATALOG]).sweep_once() for app in apps for _ in range(3)]
        direct = [apps[n % 3][PLAY].auto_finish(apps[0][CATALOG].contests[cid], a["attempt_id"], 0)
                  for n, a in enumerate(attempts) for _ in range(2)]
        results = await asyncio.gather(*sweeps, *direct)
        swept, by_hand = results[: len(sweeps)], results[len(sweeps):]
        assert sum(swept) + sum(1 for r in by_hand if r) <= len(attempts)
        for _ in range(100):
            resp = await client.get(f"{P}/admin/contests/{cid}/stats", headers=admin_headers())
            stats = await resp.json()
            if stats["attempts_finished"] >= len(attempts):
                break
            await asyncio.sleep(0.05)
        assert stats["attempts_finished"] == len(attempts) and stats["participants"] == len(attempts)
        resp = await client.get(f"{P}/contests/{cid}/orgs", params={"parent_id": "360302002"})
        village = next(r for r in (await resp.json())["entries"] if r["org_id"] == "360302002001")
        assert village["attempts"] == len(attempts) and village["participants"] == len(attempts)
        for n, (player, attempt) in enumerate(zip(players, attempts, strict=True)):
            state = await (await client.get(f"{P}/attempts/{attempt['attempt_id']}", headers=player.headers)).json()
            assert state["finished"] is True and state["score"] == 10 * (n % 3)
            assert state["finished_at"] == attempt["deadline_at"]
        # durable storage got each result once, marked automatic
        for _ in range(100):
            body = await (await client.get("/readyz")).json()
            if body["backlog"] == 0:
                break
            await asyncio.sleep(0.05)
        rows = [r async for r in client.server.app[STORAGE].load_attempts(cid)]
        assert len(rows) == len(attempts) and all(r["auto_finished"] == 1 for r in rows)
        assert sorted(r["score"] for r in rows) == sorted(10 * (n % 3) for n in range(len(attempts)))
    finally:
        for other in others:
            await other.close()


async def test_sweeper_keeps_what_redis_says_is_not_due(client: TestClient) -> None:
    """A sweeper on a host whose clock runs ahead must not drop an attempt that is not due yet."""
    cid = await seed_custom(client, time_limit_s=60)
    player = await register(client)
    _, attempt = await start(client, player, cid)
    aid = attempt["attempt_id"]
    app = client.server.app
    redis = app[PLAY].redis
    await redis.zadd(keys.deadlines(cid), {aid: attempt["started_at"] - 1})  # "due" by a skewed clock
    assert await Sweeper(app[PLAY], app[CATALOG]).sweep_once() == 0
    assert await app[PLAY].auto_finish(app[CATALOG].contests[cid], aid, 0) is None
    sweeper = app[SWEEPER]  # the app's own sweeper (every 100 ms) has looked at it too, twice
    passes = sweeper.passes
    deadline = time.monotonic() + 10
    while sweeper.passes < passes + 2:
        assert time.monotonic() < deadline, "the app's sweeper did not run"
        await asyncio.sleep(0.01)
    assert await redis.zscore(keys.deadlines(cid), aid) is not None
    state = await (await client.get(f"{P}/attempts/{aid}", headers=player.headers)).json()
    assert state["finished"] is False
    assert (await answer(client, player, aid, 0, "B"))[0] == 200
