"""Rate limits: GCRA in Redis per subject, 429 + Retry-After, X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from contest.appkeys import RUNNER, SETTINGS
from contest.ratelimit import _BATCH as BATCH
from contest.ratelimit import client_ip
from contest.redis_client import PipelinedScripts
from contest.settings import Settings, SettingsError
from leaderboard import keys
from leaderboard.ratelimit_scripts import RATE_LIMIT
from tests.fixtures.app import seed_contest

ClientFactory = Callable[..., Any]
NETS = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))


@pytest.fixture
def limited_client(app_factory: ClientFactory) -> ClientFactory:
    return app_factory


def _register_body(n: int) -> dict[str, str]:
    return {"name": f"用户{n}", "phone": f"1380000{n:04d}", "org_id": "360302002001"}


def test_client_ip_ignores_forwarded_for_from_untrusted_peers() -> None:
    assert client_ip("203.0.113.9", "1.2.3.4", NETS) == "203.0.113.9"
    assert client_ip("203.0.113.9", "1.2.3.4", ()) == "203.0.113.9"
    assert client_ip("10.1.1.1", None, NETS) == "10.1.1.1"


def test_client_ip_takes_the_first_untrusted_hop_from_the_right() -> None:
    # the client wrote "6.6.6.6" itself; the trusted proxy 10.0.0.2 appended the real peer 1.2.3.4
    assert client_ip("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", NETS) == "1.2.3.4"
    assert client_ip("10.0.0.1", "1.2.3.4", NETS) == "1.2.3.4"
    assert client_ip("10.0.0.1", "10.0.0.7, 10.0.0.2", NETS) == "10.0.0.7"  # all trusted: the leftmost
    assert client_ip("10.0.0.1", "not-an-ip", NETS) == "10.0.0.1"  # garbled: trust nothing


def test_rate_settings_parse_and_validate() -> None:
    s = Settings.from_env({"QUIZ_RL_ANSWER_USER": "5/2", "QUIZ_RL_START_IP": "0",
                           "QUIZ_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    assert s.rl_answer_user == (5, 2) and s.rl_start_ip == (0, 0)
    assert s.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    with pytest.raises(SettingsError, match="QUIZ_RL_REGISTER_IP"):
        Settings.from_env({"QUIZ_RL_REGISTER_IP": "lots"})
    with pytest.raises(SettingsError, match="QUIZ_TRUSTED_PROXIES"):
        Settings.from_env({"QUIZ_TRUSTED_PROXIES": "proxy.example"})


async def test_gcra_script_allows_a_burst_then_refuses_with_retry_after(redis_client: aioredis.Redis,
                                                                         redis_url: str) -> None:
    runner = PipelinedScripts(redis_url)
    key = keys.rate_limit("t", "x")
    try:
        replies = [await runner.run(RATE_LIMIT, (key,), ("1000", 3)) for _ in range(4)]  # 3 per 3 s
    finally:
        await runner.aclose()
    assert [r[0] for r in replies] == [1, 1, 1, 0]
    assert 0 < replies[3][1] <= 1000
    ttl = await redis_client.pttl(key)
    assert 0 < ttl <= 3000  # the key disappears once the bucket is full again


async def test_registration_per_ip_gives_429_with_retry_after(limited_client: ClientFactory) -> None:
    async with limited_client(rl_register_ip=(2, 60)) as client:
        await seed_contest(client)
        for n in range(2):
            resp = await client.post("/api/v1/auth/register", json=_register_body(n))
            assert resp.status == 201
        # a forged X-Forwarded-For from an untrusted peer changes nothing
        resp = await client.post("/api/v1/auth/register", json=_register_body(2),
                                 headers={"X-Forwarded-For": "198.51.100.7"})
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        body = await resp.json()
        assert body["error"]["code"] == "rate_limited" and body["error"]["details"]["scope"] == "register_ip"
        redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
        assert await redis.hget(keys.user_phones(), "13800000002") is None  # refused means not created
        await redis.aclose()


async def test_forwarded_for_is_honoured_behind_a_trusted_proxy(limited_client: ClientFactory) -> None:
    async with limited_client(rl_register_ip=(1, 60), trusted_proxies=("127.0.0.1",)) as client:
        await seed_contest(client)
        ok = [await client.post("/api/v1/auth/register", json=_register_body(n),
                                headers={"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(3)]
        assert [r.status for r in ok] == [201, 201, 201]  # three clients behind one proxy
        again = await client.post("/api/v1/auth/register", json=_register_body(9),
                                  headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.1"})
        assert again.status == 429  # the spoofed left hop does not give a fresh bucket


async def test_start_per_user_limit(limited_client: ClientFactory) -> None:
    async with limited_client(rl_start_user=(2, 60)) as client:
        seeded = await seed_contest(client)
        user = await seeded.register()
        path = f"/api/v1/contests/{seeded.contest_id}/attempts"
        first = await client.post(path, headers=user["headers"])
        second = await client.post(path, headers=user["headers"])
        assert (first.status, second.status) == (201, 200)
        third = await client.post(path, headers=user["headers"])
        assert third.status == 429 and "Retry-After" in third.headers
        other = await seeded.register()
        assert (await client.post(path, headers=other["headers"])).status == 201  # per user, not global


async def test_answer_per_user_limit_is_checked_inside_the_answer_script(limited_client: ClientFactory) -> None:
    # a per-IP limit under _BATCH_FROM: every answer is counted, so both calls ride each write
    async with limited_client(rl_answer_user=(3, 60), rl_answer_ip=(500, 60), run_sweeper=False) as client:
        seeded = await seed_contest(client)
        user = await seeded.register()
        attempt = await (await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts",
                                           headers=user["headers"])).json()
        aid = attempt["attempt_id"]
        runner = client.server.app[RUNNER]
        statuses = []
        for n, q in enumerate(attempt["questions"][:4]):
            if n == 1:  # the first answer loaded the scripts (NOSCRIPT, SCRIPT LOAD): count after it
                writes_before, calls_before = runner.writes, runner.calls
            resp = await client.post(f"/api/v1/attempts/{aid}/answers",
                                     json={"index": q["index"], "choice": q["options"][0]["key"]},
                                     headers=user["headers"])
            statuses.append(resp.status)
            if resp.status == 429:
                assert int(resp.headers["Retry-After"]) >= 1
                assert (await resp.json())["error"]["details"]["scope"] == "answer_user"
        assert statuses == [200, 200, 200, 429]
        # two calls (ANSWER + the per-IP limiter) but one write, one round trip, per answer
        assert (runner.calls - calls_before, runner.writes - writes_before) == (6, 3)
        state = await (await client.get(f"/api/v1/attempts/{aid}", headers=user["headers"])).json()
        assert len(state["answered"]) == 3  # the refused answer changed nothing


async def test_answer_per_ip_limit_blocks_the_address_after_it_goes_over(limited_client: ClientFactory) -> None:
    async with limited_client(rl_answer_ip=(2, 60), run_sweeper=False) as client:
        seeded = await seed_contest(client)
        user = await seeded.register()
        attempt = await (await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts",
                                           headers=user["headers"])).json()
        aid = attempt["attempt_id"]
        statuses = []
        for q in attempt["questions"][:5]:
            resp = await client.post(f"/api/v1/attempts/{aid}/answers",
                                     json={"index": q["index"], "choice": q["options"][0]["key"]},
                                     headers=user["headers"])
            statuses.append(resp.status)
        # the third request is the one Redis finds over the limit (counted in the same write as
        # its answer, so it is applied); from then on the worker refuses the address in memory
        assert statuses == [200, 200, 200, 429, 429]
        state = await (await client.get(f"/api/v1/attempts/{aid}", headers=user["headers"])).json()
        assert len(state["answered"]) == 3


async def test_limits_can_be_switched_off(limited_client: ClientFactory) -> None:
    async with limited_client(rate_limits=False, rl_register_ip=(1, 60)) as client:
        await seed_contest(client)
        statuses = [(await client.post("/api/v1/auth/register", json=_register_body(n))).status for n in range(3)]
        assert statuses == [201, 201, 201]


async def test_per_ip_answer_counts_go_out_in_batches_under_a_flood_guard_limit(
        limited_client: ClientFactory) -> None:
    # 1,000 a minute: still a flood guard (batched), and a batch's cost of 16 keeps the key 960 ms,
    # long enough to read it on a loaded machine (at 60,000 a minute it lived 16 ms)
    async with limited_client(rl_answer_ip=(1_000, 60), run_sweeper=False) as client:
        seeded = await seed_contest(client)
        user = await seeded.register()
        attempt = await (await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts",
                                           headers=user["headers"])).json()
        aid = attempt["attempt_id"]
        q = attempt["questions"][0]
        body = {"index": q["index"], "choice": q["options"][0]["key"]}
        runner = client.server.app[RUNNER]
        redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
        key = keys.rate_limit("answer_ip", "127.0.0.1")
        await redis.script_load(RATE_LIMIT.source)  # no NOSCRIPT round in the counts below
        try:
            for n in range(1, BATCH + 1):
                if n == 2:
                    calls_before, writes_before = runner.calls, runner.writes
                resp = await client.post(f"/api/v1/attempts/{aid}/answers", json=body, headers=user["headers"])
                assert resp.status == 200
                if n < BATCH:
                    assert not await redis.exists(key)  # still in the worker's batch
            # answers 2..16: one call and one write each, plus the batch (cost 16) riding in the last write
            assert (runner.calls - calls_before, runner.writes - writes_before) == (BATCH, BATCH - 1)
            ttl = await redis.pttl(key)
            assert 0 < ttl <= 16 * 60  # 16 answers at 60 ms each (1,000 per minute)
        finally:
            await redis.aclose()
