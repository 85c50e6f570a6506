"""Sign-in by SMS code: sends, caps, brute force, one use, HMAC-only storage, the webhook provider
against a real receiver, registration with a code, token refresh, and coming back on a new phone."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import CATALOG, REDIS, STORAGE
from contest.auth import issue_token
from contest.settings import Settings, SettingsError
from contest.sms.signing import acs3_authorization, tc3_authorization
from contest.web.app import create_app
from contest.workers.rebuild import rebuild_users
from tests.fixtures.app import SAMPLE, LaneTestServer, admin_headers, bearer, make_settings, seed_contest
from tests.fixtures.sms_receiver import WEBHOOK_SECRET, SmsReceiver, sms_receiver  # noqa: F401
from tests.fixtures.waiting import until

PHONE = "13900001111"
LEAF = "360302002001"


@pytest.fixture
def sms_app(redis_url: str, data_dir: Path, sms_receiver: SmsReceiver) -> Callable[..., Any]:  # noqa: F811
    """``async with sms_app(**overrides) as client``: an app sending codes to the receiver."""

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[TestClient]:
        redis = aioredis.Redis.from_url(redis_url)
        await redis.flushall()
        await redis.aclose()
        values: dict[str, Any] = {"sms_provider": f"webhook:{sms_receiver.url}", "sms_webhook_secret": WEBHOOK_SECRET,
                                  "sms_retries": 1}
        values.update(overrides)
        client = TestClient(LaneTestServer(create_app(make_settings(redis_url, data_dir, **values))))
        await client.start_server()
        try:
            yield client
        finally:
            await client.close()

    return factory


async def _orgs(client: TestClient) -> None:
    resp = await client.post("/api/v1/admin/orgs/import", data=(SAMPLE / "orgs.csv").read_bytes(),
                             headers={**admin_headers(), "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()


async def _send(client: TestClient, phone: str = PHONE, purpose: str = "login") -> Any:
    return await client.post("/api/v1/auth/sms/send", json={"phone": phone, "purpose": purpose})


async def _error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code, body
    return body["error"]


async def test_send_login_one_use_and_only_an_hmac_in_redis(sms_app: Any, sms_receiver: SmsReceiver,  # noqa: F811
                                                            redis_client: aioredis.Redis) -> None:
    async with sms_app() as client:
        await _orgs(client)
        reg = await client.post("/api/v1/auth/register", json={"name": "张三", "phone": "+86 139-0000-1111",
                                                               "org_id": LEAF})
        assert reg.status == 201, await reg.text()
        user = await reg.json()
        resp = await _send(client, "139 0000 1111")
        assert resp.status == 202 and (await resp.json())["resend_after_s"] == 60
        message = sms_receiver.messages[-1]
        assert message["phone"] == PHONE and message["purpose"] == "login" and len(message["code"]) == 6
        assert message["expires_at"] > time.time() * 1000 + 250_000
        code = message["code"]
        # Redis holds the code only as an HMAC: no key or value anywhere contains it
        for key in await redis_client.keys("*"):
            assert code.encode() not in key
            kind = (await redis_client.type(key)).decode()
            if kind == "string":
                assert code.encode() not in (await redis_client.get(key) or b"")
            elif kind == "hash":
                assert all(code.encode() not in v for v in (await redis_client.hgetall(key)).values())
        stored = await redis_client.hgetall(f"{{sms:{PHONE}}}:code:login")
        assert set(stored) == {b"h", b"left"} and len(stored[b"h"]) == 64
        resp = await client.post("/api/v1/auth/sms/login", json={"phone": PHONE, "code": code})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["user_id"] == user["user_id"] and body["name"] == "张三" and body["org_id"] == LEAF
        me = await (await client.get("/api/v1/me", headers=bearer(body["token"]))).json()
        assert me["user_id"] == user["user_id"] and me["org_id"] == LEAF
        # one use
        await _error(await client.post("/api/v1/auth/sms/login", json={"phone": PHONE, "code": code}),
                     401, "invalid_code")


async def test_brute_force_five_tries_then_locked_and_send_caps(sms_app: Any, sms_receiver: SmsReceiver,  # noqa: F811
                                                                 redis_client: aioredis.Redis) -> None:
    async with sms_app(sms_daily_cap=3) as client:
        await _orgs(client)
        assert (await _send(client)).status == 202
        code = sms_receiver.code_for(PHONE)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for left in (4, 3, 2, 1, 0):
            error = await _error(await client.post("/api/v1/auth/sms/login", json={"phone": PHONE, "code": wrong}),
                                 401, "invalid_code")
            assert error["details"]["tries_left"] == left
        # locked out of that code: the right one no longer works
        await _error(await client.post("/api/v1/auth/sms/login", json={"phone": PHONE, "code": code}),
                     401, "invalid_code")
        assert not await redis_client.exists(f"{{sms:{PHONE}}}:code:login")
        # a new code only after the resend interval
        resp = await _send(client)
        error = await _error(resp, 429, "rate_limited")
        assert error["details"]["scope"] == "sms_resend" and 55 <= int(resp.headers["Retry-After"]) <= 60
        # ...and never more than the daily cap (the resend clock is made to pass by deleting it)
        for _ in range(2):
            await redis_client.delete(f"{{sms:{PHONE}}}:cool")
            assert (await _send(client)).status == 202
        await redis_client.delete(f"{{sms:{PHONE}}}:cool")
        resp = await _send(client)
        assert (await _error(resp, 429, "rate_limited"))["details"]["scope"] == "sms_daily"
        assert int(resp.headers["Retry-After"]) > 80_000
        assert len([m for m in sms_receiver.messages if m["phone"] == PHONE]) == 3


async def test_per_ip_limits_and_field_errors(sms_app: Any, sms_receiver: SmsReceiver) -> None:  # noqa: F811
    async with sms_app(rl_sms_send_ip=(3, 60)) as client:
        for bad in ("123456", "12900001111", "1390000111", "+1 415 555 0100", ""):
            error = await _error(await _send(client, bad), 400, "validation_failed")
            assert "phone" in error["details"]["fields"]
        error = await _error(await _send(client, PHONE, "nope"), 400, "validation_failed")
        assert "purpose" in error["details"]["fields"]
        error = await _error(await client.post("/api/v1/auth/sms/login", json={"phone": PHONE, "code": "12ab"}),
                             400, "validation_failed")
        assert "code" in error["details"]["fields"]
        for n in range(3):
            assert (await _send(client, f"1380000000{n}")).status == 202
        resp = await _send(client, "13800000009")
        assert (await _error(resp, 429, "rate_limited"))["details"]["scope"] == "sms_send_ip"
        assert "Retry-After" in resp.headers


async def test_unregistered_phone_is_404_after_the_code(sms_app: Any, sms_receiver: SmsReceiver) -> None:  # noqa: F811
    async with sms_app() as client:
        # without the right code the answer says nothing about the phone
        await _error(await client.post("/api/v1/auth/sms/login", json={"phone": PHONE, "code": "000000"}),
                     401, "invalid_code")
        assert (await _send(client)).status == 202
        error = await _error(await client.post("/api/v1/auth/sms/login",
                                               json={"phone": PHONE, "code": sms_receiver.code_for(PHONE)}),
                             404, "not_registered")
        assert error["details"]["phone"] == PHONE


async def test_failed_webhook_is_503_and_stores_nothing(sms_app: Any, sms_receiver: SmsReceiver,  # noqa: F811
                                                        redis_client: aioredis.Redis) -> None:
    async with sms_app(sms_retries=2) as client:
        sms_receiver.fail_status = 502
        await _error(await _send(client), 503, "unavailable")
        assert sms_receiver.hits == 3  # one try and two retries
        assert not await redis_client.exists(f"{{sms:{PHONE}}}:code:login")
        assert not await redis_client.exists(f"{{sms:{PHONE}}}:cool")  # the slot is given back
        sms_receiver.fail_status = 0
        assert (await _send(client)).status == 202
        assert await redis_client.exists(f"{{sms:{PHONE}}}:code:login")


async def test_unreachable_webhook_times_out_into_503(sms_app: Any) -> None:
    async with sms_app(sms_provider="webhook:http://127.0.0.1:9/sms", sms_retries=0, sms_timeout_s=1.0) as client:
        await _error(await _send(client), 503, "unavailable")


async def test_sms_off_is_503(app_factory: Any) -> None:
    async with app_factory() as client:
        await _error(await _send(client), 503, "unavailable")


def test_log_provider_only_in_dev_and_webhook_needs_its_secret() -> None:
    with pytest.raises(SettingsError, match="QUIZ_ENV=dev"):
        Settings.from_env({"QUIZ_SMS_PROVIDER": "log"})
    assert Settings.from_env({"QUIZ_SMS_PROVIDER": "log", "QUIZ_ENV": "dev"}).sms_provider == "log"
    with pytest.raises(SettingsError, match="QUIZ_SMS_WEBHOOK_SECRET"):
        Settings.from_env({"QUIZ_SMS_PROVIDER": "webhook:https://sms.example/send"})
    with pytest.raises(SettingsError, match="https://"):
        Settings.from_env({"QUIZ_SMS_PROVIDER": "webhook:http://sms.example/send", "QUIZ_SMS_WEBHOOK_SECRET": "k"})
    assert Settings.from_env({"QUIZ_SMS_PROVIDER": "webhook:http://127.0.0.1:9000/send",
                              "QUIZ_SMS_WEBHOOK_SECRET": "k"}).sms_webhook_secret == "k"
    with pytest.raises(SettingsError):
        Settings.from_env({"QUIZ_SMS_PROVIDER": "carrier-pigeon"})
    with pytest.raises(SettingsError, match="QUIZ_SMS_ALIYUN_SIGN_NAME"):
        Settings.from_env({"QUIZ_SMS_PROVIDER": "aliyun", "QUIZ_SMS_ALIYUN_ACCESS_KEY_ID": "x"})
    with pytest.raises(SettingsError, match="QUIZ_SMS_TENCENT_SECRET_ID"):
        Settings.from_env({"QUIZ_SMS_PROVIDER": "tencent"})
    with pytest.raises(SettingsError, match="QUIZ_PHONE_PATTERN"):
        Settings.from_env({"QUIZ_PHONE_PATTERN": "(("})


async def test_register_requires_a_code_when_configured(sms_app: Any, sms_receiver: SmsReceiver) -> None:  # noqa: F811
    async with sms_app(register_requires_sms=True) as client:
        await _orgs(client)
        body = {"name": "李四", "phone": PHONE, "org_id": LEAF}
        error = await _error(await client.post("/api/v1/auth/register", json=body), 400, "validation_failed")
        assert "code" in error["details"]["fields"]
        await _error(await client.post("/api/v1/auth/register", json={**body, "code": "000000"}), 401, "invalid_code")
        assert (await _send(client, PHONE, "register")).status == 202
        code = sms_receiver.code_for(PHONE, "register")
        resp = await client.post("/api/v1/auth/register", json={**body, "code": code})
        assert resp.status == 201, await resp.text()


async def test_phones_and_units_are_validated(client: TestClient) -> None:
    await _orgs(client)
    for bad in ("123456", "1390000111", "23900001111", "139000011112"):
        resp = await client.post("/api/v1/auth/register", json={"name": "王五", "phone": bad, "org_id": LEAF})
        error = await _error(resp, 400, "validation_failed")
        assert list(error["details"]["fields"]) == ["phone"]
    for county in ("360000", "360302", "360302002"):
        resp = await client.post("/api/v1/auth/register", json={"name": "王五", "phone": PHONE, "org_id": county})
        error = await _error(resp, 400, "validation_failed")
        assert list(error["details"]["fields"]) == ["org_id"]
        assert error["details"]["field_errors"]["org_id"]["code"] == "not_a_member_unit"
    resp = await client.post("/api/v1/auth/register", json={"name": "王五", "phone": "86 13900001111", "org_id": LEAF})
    assert resp.status == 201
    # every spelling of the same phone is the same phone
    dup = await client.post("/api/v1/auth/register", json={"name": "王五", "phone": "+8613900001111", "org_id": LEAF})
    await _error(dup, 409, "already_registered")


async def test_refresh_and_expired_tokens(client: TestClient, app_settings: Settings) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    resp = await client.post("/api/v1/auth/refresh", headers=user["headers"])
    assert resp.status == 200, await resp.text()
    fresh = await resp.json()
    assert fresh["user_id"] == user["user_id"] and fresh["expires_at"] >= user["expires_at"]
    me = await (await client.get("/api/v1/me", headers=bearer(fresh["token"]))).json()
    assert me["user_id"] == user["user_id"]
    expired, _ = issue_token(app_settings.signing_secret, user_id=user["user_id"], role="participant",
                             org_id=LEAF, name="张三", ttl_s=60, now=time.time() - 120)
    await _error(await client.post("/api/v1/auth/refresh", headers=bearer(expired)), 401, "token_expired")
    await _error(await client.post("/api/v1/auth/refresh"), 401, "unauthenticated")
    await _error(await client.post("/api/v1/auth/refresh", headers=admin_headers()), 403, "forbidden")


async def test_back_after_expiry_on_a_second_phone_keeps_the_place(sms_app: Any, sms_receiver: SmsReceiver,  # noqa: F811
                                                                    ) -> None:
    async with sms_app() as client:
        seeded = await seed_contest(client)
        user = await seeded.register()
        other = await seeded.register()
        for who, right in ((user, 3), (other, 1)):
            start = await (await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts",
                                             headers=who["headers"])).json()
            preview = await client.get(f"/api/v1/attempts/{start['attempt_id']}", headers=who["headers"])
            assert preview.status == 200
            for q in start["questions"][:right]:
                await client.post(f"/api/v1/attempts/{start['attempt_id']}/answers", headers=who["headers"],
                                  json={"index": q["index"], "choice": q["options"][0]["key"]})
            fin = await client.post(f"/api/v1/attempts/{start['attempt_id']}/finish", headers=who["headers"])
            assert fin.status == 200
        before = await (await client.get(f"/api/v1/contests/{seeded.contest_id}/leaderboard/me",
                                         headers=user["headers"])).json()
        # a new phone: no token at all, only the phone number
        phone = "13000000001"  # the first phone Seeded.register hands out
        assert (await _send(client, phone)).status == 202
        resp = await client.post("/api/v1/auth/sms/login", json={"phone": phone, "code": sms_receiver.code_for(phone)})
        assert resp.status == 200, await resp.text()
        again = await resp.json()
        assert again["user_id"] == user["user_id"]
        h = bearer(again["token"])
        after = await (await client.get(f"/api/v1/contests/{seeded.contest_id}/leaderboard/me", headers=h)).json()
        assert (after["rank"], after["score"]) == (before["rank"], before["score"])
        assert (await client.get(f"/api/v1/attempts/{start['attempt_id']}", headers=h)).status == 404  # other's
        detail = await (await client.get(f"/api/v1/contests/{seeded.contest_id}", headers=h)).json()
        assert detail.get("best_score", before["score"]) == before["score"]


@pytest.mark.parametrize("vendor", ["aliyun", "tencent"])
async def test_vendor_providers_send_signed_requests(sms_app: Any, sms_receiver: SmsReceiver,  # noqa: F811
                                                     vendor: str) -> None:
    if vendor == "aliyun":
        conf = {"QUIZ_SMS_ALIYUN_ACCESS_KEY_ID": "kid", "QUIZ_SMS_ALIYUN_ACCESS_KEY_SECRET": "ksecret",
                "QUIZ_SMS_ALIYUN_SIGN_NAME": "竞答", "QUIZ_SMS_ALIYUN_TEMPLATE_CODE": "SMS_1",
                "QUIZ_SMS_ALIYUN_ENDPOINT": sms_receiver.url.rsplit("/", 1)[0]}
        sms_receiver.reply = {"Code": "OK", "Message": "OK"}
    else:
        conf = {"QUIZ_SMS_TENCENT_SECRET_ID": "sid", "QUIZ_SMS_TENCENT_SECRET_KEY": "skey",
                "QUIZ_SMS_TENCENT_SDK_APP_ID": "1400000000", "QUIZ_SMS_TENCENT_SIGN_NAME": "竞答",
                "QUIZ_SMS_TENCENT_TEMPLATE_ID": "100", "QUIZ_SMS_TENCENT_ENDPOINT": sms_receiver.url}
        sms_receiver.reply = {"Response": {"SendStatusSet": [{"Code": "Ok"}], "RequestId": "r"}}
    async with sms_app(sms_provider=vendor, sms_vendor=conf) as client:
        assert (await _send(client)).status == 202
        path, headers, body = sms_receiver.requests[-1]
        headers = {k.lower(): v for k, v in headers.items()}
        if vendor == "aliyun":
            from urllib.parse import parse_qsl, urlsplit

            query = dict(parse_qsl(urlsplit(path).query))
            assert query["PhoneNumbers"] == PHONE and query["SignName"] == "竞答"
            signed = {k: v for k, v in headers.items() if k == "host" or k.startswith("x-acs-")}
            expected, _ = acs3_authorization(method="POST", path="/", query=query, headers=signed, payload=body,
                                             access_key_id="kid", access_key_secret="ksecret")
            assert headers["authorization"] == expected and headers["x-acs-action"] == "SendSms"
        else:
            import orjson

            payload = orjson.loads(body)
            assert payload["PhoneNumberSet"] == ["+86" + PHONE] and len(payload["TemplateParamSet"][0]) == 6
            expected, _ = tc3_authorization(secret_id="sid", secret_key="skey", service="sms",
                                            host=headers["host"], payload=body,
                                            timestamp=int(headers["x-tc-timestamp"]))
            assert headers["authorization"] == expected and headers["x-tc-action"] == "SendSms"
        # a vendor's refusal is a failed send: 503, nothing stored
        sms_receiver.reply = ({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "limit"} if vendor == "aliyun" else
                              {"Response": {"Error": {"Code": "LimitExceeded", "Message": "limit"}}})
        await _error(await _send(client, "13700000000"), 503, "unavailable")


async def test_units_marked_accepts_members_take_members(client: TestClient) -> None:
    await _orgs(client)
    extra = "单位编号,上级单位,单位名称,层级,接收成员\n360302002,360302,桃源镇（镇直机关）,4,是\n".encode()
    resp = await client.post("/api/v1/admin/orgs/import", data=extra,
                             headers={**admin_headers(), "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    picker = await (await client.get("/api/v1/orgs", params={"parent_id": "360302"})).json()
    assert {o["org_id"]: o.get("accepts_members", False) for o in picker["orgs"]} == {"360302001": False,
                                                                                      "360302002": True}
    town = await client.post("/api/v1/auth/register", json={"name": "赵六", "phone": PHONE, "org_id": "360302002"})
    assert town.status == 201, await town.text()
    county = await client.post("/api/v1/auth/register", json={"name": "赵七", "phone": "13900002222",
                                                              "org_id": "360302"})
    await _error(county, 400, "validation_failed")
    bad = "org_id,parent_id,name,level,accepts_members\n360302001,360302,镇,4,maybe\n".encode()
    resp = await client.post("/api/v1/admin/orgs/import", data=bad, headers={**admin_headers(),
                                                                              "Content-Type": "text/csv"})
    error = await _error(resp, 400, "validation_failed")
    assert error["details"]["errors"][0]["column"] == "accepts_members"


async def test_deployment_wide_send_budget(sms_app: Any) -> None:
    async with sms_app(rl_sms_send_all=(2, 60)) as client:
        for n in range(2):
            assert (await _send(client, f"1370000000{n}")).status == 202
        resp = await _send(client, "13700000009")
        assert (await _error(resp, 429, "rate_limited"))["details"]["scope"] == "sms_send_all"


async def test_sms_sign_in_finds_the_profile_after_redis_lost_it(sms_app: Any, sms_receiver: SmsReceiver,  # noqa: F811
                                                                  redis_client: aioredis.Redis) -> None:
    async with sms_app() as client:
        await _orgs(client)
        reg = await client.post("/api/v1/auth/register", json={"name": "孙八", "phone": PHONE, "org_id": LEAF})
        user = await reg.json()
        async def flushed() -> bool:  # the flusher has written the user to the database
            return bool((await (await client.get("/readyz")).json()).get("backlog") == 0)
        await until(flushed, within=30, interval=0.05, what="the users stream flushed to the database")
        await redis_client.delete("{quiz}:profiles")
        assert (await _send(client)).status == 202
        resp = await client.post("/api/v1/auth/sms/login", json={"phone": PHONE, "code": sms_receiver.code_for(PHONE)})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert (body["user_id"], body["name"], body["org_id"]) == (user["user_id"], "孙八", LEAF)
        # a rebuild writes the profiles again
        app = client.server.app
        await rebuild_users(app[REDIS], app[STORAGE], app[CATALOG])
        assert await redis_client.hget("{quiz}:profiles", user["user_id"]) == f"孙八\t{LEAF}".encode()
