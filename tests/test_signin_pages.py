"""Chromium plays the SMS sign-in pages: register -> token expires -> SMS sign-in (phone filled in)
-> the same history; a second phone through "已注册？短信登录"; the staff sign-in by SMS on the
dashboard and the admin pages.  Codes are read from a real webhook receiver, as a phone gets them."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.auth import issue_token
from contest.settings import Settings
from contest.web.app import create_app
from tests.fixtures.app import LaneTestServer, admin_headers, make_settings, seed_contest
from tests.fixtures.binaries import playwright
from tests.fixtures.sms_receiver import WEBHOOK_SECRET, SmsReceiver, sms_receiver  # noqa: F401
from tests.orgpick import pick_by_cascade
from tests.test_pages import (  # noqa: F401
    PHONE,
    ROOT,
    VILLAGE,
    VILLAGE_PATH,
    _answer_all,
    _answer_one,
    _snapshot,
    _start,
    _watch,
    browser,
)

pw: Any = playwright()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("chromium_path"),
]
USER_PHONE = "13912340001"


class SmsServer:
    def __init__(self, url: str, settings: Settings, client: TestClient) -> None:
        self.url = url
        self.settings = settings
        self.client = client


@pytest.fixture
def sms_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
async def sms_server(redis_url: str, data_dir: Path, sms_receiver: SmsReceiver,  # noqa: F811
                     sms_settings: dict[str, Any]) -> AsyncIterator[SmsServer]:
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    settings = make_settings(redis_url, data_dir, sms_provider=f"webhook:{sms_receiver.url}",
                             sms_webhook_secret=WEBHOOK_SECRET, rate_limits=False, **sms_settings)
    client = TestClient(LaneTestServer(create_app(settings)))
    await client.start_server()
    await seed_contest(client, contest_id="demo")
    yield SmsServer(str(client.server.make_url("/")).rstrip("/"), settings, client)
    await client.close()


async def _code(receiver: SmsReceiver, phone: str, purpose: str, before: int) -> str:
    await receiver.wait_for(before + 1)
    return receiver.code_for(phone, purpose)


async def _me(base: str, token: str, path: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(base + path, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_register_expire_sms_signin_same_history(sms_server: SmsServer, browser: Any,  # noqa: F811
                                                       sms_receiver: SmsReceiver) -> None:  # noqa: F811
    base = sms_server.url
    problems: list[str] = []
    ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    second = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await page.goto(base + "/")
        await page.get_by_test_id("register-name").fill("回访用户")
        await page.get_by_test_id("register-phone").fill("139 1234 0001")
        await pick_by_cascade(page, [ROOT, *VILLAGE_PATH, VILLAGE])
        await page.get_by_test_id("register-submit").click()
        await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
        first = await page.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
        await _start(page)
        await _answer_all(page)
        await page.get_by_test_id("finish").click()
        await pw.expect(page.get_by_test_id("score")).to_be_visible(timeout=10_000)
        before = await _me(base, first["token"], "/api/v1/contests/demo/leaderboard/me")
        assert before["rank"] == 1

        # the token expires (the server says so; the page still holds it)
        expired, _ = issue_token(sms_server.settings.signing_secret, user_id=first["user_id"], role="participant",
                                 org_id=VILLAGE, name="回访用户", ttl_s=60, now=time.time() - 3600)
        await page.evaluate("(t) => localStorage.setItem('quiz.auth', JSON.stringify({user_id: t.u, token: t.t,"
                            " expires_at: Date.now() + 86400000}))", {"u": first["user_id"], "t": expired})
        await page.reload()
        # SMS sign-in, not registration, with the phone filled in
        await pw.expect(page.get_by_test_id("sms-login")).to_be_visible(timeout=10_000)
        assert await page.get_by_test_id("register-name").count() == 0
        await pw.expect(page.get_by_test_id("sms-phone")).to_have_value(USER_PHONE)
        code_in = page.get_by_test_id("sms-code")
        assert await code_in.get_attribute("autocomplete") == "one-time-code"
        sent = len(sms_receiver.messages)
        await page.get_by_test_id("sms-send").click()
        code = await _code(sms_receiver, USER_PHONE, "login", sent)
        send = page.get_by_test_id("sms-send")
        await pw.expect(send).to_be_disabled()
        await pw.expect(send).to_have_text(re.compile(r"^\d+ 秒后重新获取$"))
        # a wrong code first: the message is Chinese and says how many tries are left
        await code_in.fill(f"{(int(code) + 1) % 1_000_000:06d}")
        await page.get_by_test_id("sms-submit").click()
        await pw.expect(page.get_by_test_id("toast").filter(has_text="还可以再试 4 次")).to_be_visible(timeout=10_000)
        await _snapshot(page, "h5-sms-signin")
        await code_in.fill(code)
        await page.get_by_test_id("sms-submit").click()
        await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
        again = await page.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
        assert again["user_id"] == first["user_id"] and again["token"] != expired
        after = await _me(base, again["token"], "/api/v1/contests/demo/leaderboard/me")
        assert (after["rank"], after["score"], after["duration_ms"]) == (before["rank"], before["score"],
                                                                         before["duration_ms"])

        # a second phone: nothing stored, "已注册？短信登录" from the registration form
        other = await second.new_page()
        _watch(other, problems, base)
        await other.goto(base + "/")
        await other.get_by_test_id("sms-login-link").click()
        await other.get_by_test_id("sms-phone").fill("+86 139-1234-0001")
        # the resend clock must pass first (60 s in real life)
        redis = aioredis.Redis.from_url(sms_server.settings.redis_url or "")
        await redis.delete("{sms:13912340001}:cool")
        await redis.aclose()
        sent = len(sms_receiver.messages)
        await other.get_by_test_id("sms-send").click()
        await other.get_by_test_id("sms-code").fill(await _code(sms_receiver, USER_PHONE, "login", sent))
        await other.get_by_test_id("sms-submit").click()
        await pw.expect(other.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
        third = await other.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
        assert third["user_id"] == first["user_id"]
        # an unregistered phone is sent on to registration with the phone kept
        await other.evaluate("localStorage.clear()")
        await other.goto(base + "/")
        await other.get_by_test_id("sms-login-link").click()
        await other.get_by_test_id("sms-phone").fill("13912340002")
        sent = len(sms_receiver.messages)
        await other.get_by_test_id("sms-send").click()
        await other.get_by_test_id("sms-code").fill(await _code(sms_receiver, "13912340002", "login", sent))
        await other.get_by_test_id("sms-submit").click()
        await pw.expect(other.get_by_test_id("register-name")).to_be_visible(timeout=10_000)
        await pw.expect(other.get_by_test_id("register-phone")).to_have_value("13912340002")
    finally:
        await ctx.close()
        await second.close()
    assert not problems, problems


async def test_quiet_refresh_before_expiry(sms_server: SmsServer, browser: Any) -> None:  # noqa: F811
    base = sms_server.url
    problems: list[str] = []
    async with aiohttp.ClientSession() as s, s.post(base + "/api/v1/auth/register", json={
            "name": "刷新", "phone": "13912340003", "org_id": VILLAGE}) as r:
        user = await r.json()
    # a token with an hour left of a week-long life: the page refreshes it without a word
    token, expires_at = issue_token(sms_server.settings.signing_secret, user_id=user["user_id"],
                                    role="participant", org_id=VILLAGE, name="刷新", ttl_s=3600)
    ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await page.goto(base + "/static/h5/index.html")
        await page.evaluate("(a) => localStorage.setItem('quiz.auth', JSON.stringify(a))",
                            {"user_id": user["user_id"], "token": token, "expires_at": expires_at})
        await page.goto(base + "/")
        await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
        await page.wait_for_function("(t) => JSON.parse(localStorage.getItem('quiz.auth')).token !== t",
                                     arg=token, timeout=10_000)
        fresh = await page.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
        assert fresh["user_id"] == user["user_id"] and fresh["expires_at"] > expires_at + 86_400_000
    finally:
        await ctx.close()
    assert not problems, problems


async def test_staff_sign_in_by_sms_on_dashboard_and_admin(sms_server: SmsServer, browser: Any,  # noqa: F811
                                                           sms_receiver: SmsReceiver) -> None:  # noqa: F811
    base = sms_server.url
    problems: list[str] = []
    rows = "手机号,姓名,单位编号,角色\n13512340001,村组织者,360302002001,组织者\n13512340002,省管理员,360000,管理员\n"
    async with aiohttp.ClientSession() as s, s.post(base + "/api/v1/admin/organizers/import", data=rows.encode(),
                                                    headers={**admin_headers(), "Content-Type": "text/csv"}) as r:
        assert r.status == 200, await r.text()
    ctx = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await page.goto(base + "/dashboard/?contest=demo")
        await pw.expect(page.get_by_test_id("staff-phone")).to_be_visible(timeout=10_000)
        assert await page.get_by_test_id("staff-code").get_attribute("autocomplete") == "one-time-code"
        await pw.expect(page.get_by_test_id("login-token")).to_be_visible()  # pasting a token stays possible
        await page.get_by_test_id("staff-phone").fill("135 1234 0001")
        sent = len(sms_receiver.messages)
        await page.get_by_test_id("staff-send").click()
        await page.get_by_test_id("staff-code").fill(await _code(sms_receiver, "13512340001", "staff", sent))
        await _snapshot(page, "dashboard-sms-signin")
        await page.get_by_test_id("staff-login").click()
        await pw.expect(page.get_by_test_id("stat-participants")).to_be_visible(timeout=10_000)
        token = await page.evaluate("sessionStorage.getItem('quiz.staffToken')")
        me = await _me(base, token, "/api/v1/me")
        assert me["role"] == "organizer" and me["org_id"] == VILLAGE

        admin = await ctx.new_page()
        _watch(admin, problems, base)
        await admin.goto(base + "/admin/")
        await admin.evaluate("sessionStorage.clear()")
        await admin.reload()
        await admin.get_by_test_id("staff-phone").fill("13512340002")
        sent = len(sms_receiver.messages)
        await admin.get_by_test_id("staff-send").click()
        await admin.get_by_test_id("staff-code").fill("000000")
        await admin.get_by_test_id("staff-login").click()
        await pw.expect(admin.get_by_test_id("toast").filter(has_text="验证码错误")).to_be_visible(timeout=10_000)
        await admin.get_by_test_id("staff-code").fill(await _code(sms_receiver, "13512340002", "staff", sent))
        await admin.get_by_test_id("staff-login").click()
        await pw.expect(admin.locator("#main")).to_be_visible(timeout=10_000)
        me = await _me(base, await admin.evaluate("sessionStorage.getItem('quiz.staffToken')"), "/api/v1/me")
        assert me["role"] == "admin"
    finally:
        await ctx.close()
    assert not problems, problems


@pytest.mark.parametrize("sms_settings", [{"register_requires_sms": True}])
async def test_registration_with_a_code_when_the_campaign_requires_it(sms_server: SmsServer, browser: Any,  # noqa: F811
                                                                      sms_receiver: SmsReceiver,  # noqa: F811
                                                                      sms_settings: dict[str, Any]) -> None:
    base = sms_server.url
    problems: list[str] = []
    ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await page.goto(base + "/")
        await page.get_by_test_id("register-name").fill("实名用户")
        await page.get_by_test_id("register-phone").fill("13912340009")
        await pick_by_cascade(page, [ROOT, *VILLAGE_PATH, VILLAGE])
        await page.get_by_test_id("register-submit").click()
        # the server asks for a code: the form grows a code field, everything typed is kept
        await pw.expect(page.get_by_test_id("register-code")).to_be_visible(timeout=10_000)
        await pw.expect(page.get_by_test_id("register-name")).to_have_value("实名用户")
        sent = len(sms_receiver.messages)
        await page.get_by_test_id("register-send").click()
        await page.get_by_test_id("register-code").fill(await _code(sms_receiver, "13912340009", "register", sent))
        await page.get_by_test_id("register-submit").click()
        await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
    finally:
        await ctx.close()
    assert not problems, problems


async def test_organizer_accounts_page(sms_server: SmsServer, browser: Any,  # noqa: F811
                                       sms_receiver: SmsReceiver) -> None:  # noqa: F811
    base = sms_server.url
    problems: list[str] = []
    admin_row = "手机号,姓名,单位编号,角色\n13512340009,省管理员,360000,管理员\n".encode()
    async with aiohttp.ClientSession() as s, s.post(base + "/api/v1/admin/organizers/import", data=admin_row,
                                                    headers={**admin_headers(), "Content-Type": "text/csv"}) as r:
        assert r.status == 200, await r.text()
    ctx = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await page.goto(base + "/admin/organizers/")
        await page.get_by_test_id("staff-phone").fill("13512340009")
        sent = len(sms_receiver.messages)
        await page.get_by_test_id("staff-send").click()
        await page.get_by_test_id("staff-code").fill(await _code(sms_receiver, "13512340009", "staff", sent))
        await page.get_by_test_id("staff-login").click()
        await pw.expect(page.get_by_test_id("organizer-row")).to_have_count(1, timeout=10_000)
        upload = page.locator("#og-file")
        bad = "手机号,姓名,单位编号\n123,甲,360000\n13512340010,乙,nowhere\n"
        await upload.set_input_files({"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()})
        await page.get_by_test_id("organizers-import").locator("button[type=submit]").click()
        await pw.expect(page.get_by_test_id("organizers-errors").locator("tr")).to_have_count(2, timeout=10_000)
        good = "phone,name,org_id,role\n13512340010,村组织者,360302002001,organizer\n13512340011,镇组织者,360302002,\n"
        await upload.set_input_files({"name": "good.csv", "mimeType": "text/csv", "buffer": good.encode()})
        await page.get_by_test_id("organizers-import").locator("button[type=submit]").click()
        await pw.expect(page.get_by_test_id("organizers-imported")).to_be_visible(timeout=10_000)
        await pw.expect(page.get_by_test_id("organizer-row")).to_have_count(3, timeout=10_000)
        row = page.locator('[data-testid=organizer-row]', has_text="13512340010")
        await row.get_by_test_id("organizer-toggle").click()
        await pw.expect(row.get_by_test_id("organizer-state")).to_have_text("已停用", timeout=10_000)
        await page.get_by_test_id("organizers-q").fill("镇组织者")
        await pw.expect(page.get_by_test_id("organizer-row")).to_have_count(1, timeout=10_000)
        await pw.expect(page.get_by_test_id("organizers-audit").locator("tr").first).to_contain_text("停用")
        await _snapshot(page, "admin-organizers")
    finally:
        await ctx.close()
    assert not problems, problems


async def test_token_expiring_mid_attempt_resumes_it_after_sms_sign_in(sms_server: SmsServer, browser: Any,  # noqa: F811
                                                                       sms_receiver: SmsReceiver) -> None:  # noqa: F811
    base = sms_server.url
    problems: list[str] = []
    ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await page.goto(base + "/")
        await page.get_by_test_id("register-name").fill("答到一半")
        await page.get_by_test_id("register-phone").fill("13912340005")
        await pick_by_cascade(page, [ROOT, *VILLAGE_PATH, VILLAGE])
        await page.get_by_test_id("register-submit").click()
        await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
        first = await page.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
        await _start(page)
        await _answer_one(page)
        expired, _ = issue_token(sms_server.settings.signing_secret, user_id=first["user_id"], role="participant",
                                 org_id=VILLAGE, name="答到一半", ttl_s=60, now=time.time() - 3600)
        await page.evaluate("(t) => localStorage.setItem('quiz.auth', JSON.stringify({user_id: t.u, token: t.t,"
                            " expires_at: Date.now() + 86400000}))", {"u": first["user_id"], "t": expired})
        await page.reload()
        await pw.expect(page.get_by_test_id("sms-phone")).to_have_value("13912340005", timeout=10_000)
        sent = len(sms_receiver.messages)
        await page.get_by_test_id("sms-send").click()
        await page.get_by_test_id("sms-code").fill(await _code(sms_receiver, "13912340005", "login", sent))
        await page.get_by_test_id("sms-submit").click()
        # back in the same attempt, the answered question kept
        await pw.expect(page.get_by_test_id("question-stem")).to_be_visible(timeout=10_000)
        assert await _answer_all(page) == 9
    finally:
        await ctx.close()
    assert not problems, problems
