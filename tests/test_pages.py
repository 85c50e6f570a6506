"""Browser tests of the static pages, driving Debian's Chromium through Playwright.

Needs the ``live_server`` fixture (tests/fixtures/app.py): a running server with the published
contest "demo" made from contest/sample/*, with ``.url``, ``.admin_token`` and ``.organizer_token``.
Screenshots (375x812) go to test-artifacts/.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pw = pytest.importorskip("playwright.async_api")

CHROMIUM = os.environ.get("QUIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 375, "height": 812}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with pw.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


def _watch(page: Any, problems: list[str], base_url: str) -> None:
    """Collect page errors and any request that leaves the server under test."""
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("dialog", lambda d: d.accept())

    def on_request(req: Any) -> None:
        url = req.url
        if not (url.startswith(base_url) or url.startswith("data:") or url.startswith("blob:")):
            problems.append(f"external request: {url}")

    page.on("request", on_request)


async def _snapshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert fits, f"{name}: horizontal overflow (scrollWidth, innerWidth) = {width}"


async def _register(page: Any, base: str) -> str:
    await page.goto(base + "/")
    await page.get_by_test_id("register-name").fill("测试用户")
    await page.get_by_test_id("register-phone").fill(f"139{random.randint(0, 99_999_999):08d}")
    org = page.get_by_test_id("register-org")
    # wait for the org list, then pick the deepest (last) org offered
    await page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=register-org] option[value]:not([value=\"\"])').length > 0"
    )
    values = await org.locator("option").evaluate_all("os => os.map(o => o.value).filter(Boolean)")
    await org.select_option(values[-1])
    await page.get_by_test_id("register-submit").click()
    await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
    auth = await page.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
    assert auth and auth["user_id"], auth
    return str(auth["user_id"])


async def _answer_all(page: Any) -> int:
    """Answer every question (first option each time) until only `finish` is left."""
    answered = 0
    for _ in range(200):
        await page.wait_for_function(
            """() => {
                const stem = document.querySelector('[data-testid=question-stem]');
                const sub = document.querySelector('[data-testid=submit-answer]');
                const fin = document.querySelector('[data-testid=finish]');
                return (stem && sub) || (fin && !sub);
            }""",
            timeout=15_000,
        )
        submit = page.get_by_test_id("submit-answer")
        if await submit.count() == 0:
            return answered
        stem = page.get_by_test_id("question-stem")
        index = await stem.get_attribute("data-index")
        await pw.expect(stem).not_to_be_empty()
        await page.get_by_test_id("option").first.click()
        await submit.click()
        answered += 1
        await page.wait_for_function(
            """(idx) => {
                const stem = document.querySelector('[data-testid=question-stem]');
                return !document.querySelector('[data-testid=submit-answer]') || !stem || stem.dataset.index !== idx;
            }""",
            arg=index,
            timeout=15_000,
        )
    raise AssertionError("too many questions")


async def test_participant_flow_dashboard_and_screen(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []

    h5_ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    dash_ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await h5_ctx.new_page()
        _watch(page, problems, base)
        user_id = await _register(page, base)
        await _snapshot(page, "h5-contests")

        await page.locator('[data-testid=contest-item][data-contest-id="demo"]').click()
        await pw.expect(page.get_by_test_id("start")).to_be_visible()
        await _snapshot(page, "h5-detail")
        await page.get_by_test_id("start").click()
        await pw.expect(page.get_by_test_id("question-stem")).to_be_visible(timeout=10_000)
        await _snapshot(page, "h5-question")

        answered = await _answer_all(page)
        assert answered >= 1

        # the organizer dashboard is open before the participant finishes
        dash = await dash_ctx.new_page()
        _watch(dash, problems, base)
        await dash.goto(f"{base}/dashboard/?token={live_server.organizer_token}&contest=demo")
        await pw.expect(dash.get_by_test_id("stat-participants")).to_be_visible(timeout=10_000)
        assert "token=" not in dash.url, "the token must be removed from the address bar"
        await dash.wait_for_timeout(1500)  # let the live feed connect

        await page.get_by_test_id("finish").click()
        await pw.expect(page.get_by_test_id("score")).to_be_visible(timeout=10_000)
        await pw.expect(page.get_by_test_id("rank")).to_be_visible()
        finished_at = time.monotonic()
        assert (await page.get_by_test_id("score").inner_text()).strip() not in ("", "—")
        await pw.expect(page.get_by_test_id("rank")).not_to_have_text("—", timeout=5_000)

        row = dash.locator(f'[data-testid=leaderboard-row][data-user-id="{user_id}"]')
        await pw.expect(row).to_be_visible(timeout=3_000)
        assert time.monotonic() - finished_at <= 3.5
        await pw.expect(dash.get_by_test_id("org-row").first).to_be_visible(timeout=10_000)
        await _snapshot(page, "h5-result")
        await _snapshot(dash, "dashboard")

        screen = await dash_ctx.new_page()
        _watch(screen, problems, base)
        await screen.goto(f"{base}/screen/demo")
        await pw.expect(screen.locator(f'[data-testid=leaderboard-row][data-user-id="{user_id}"]')).to_be_visible(
            timeout=10_000
        )
        await pw.expect(screen.get_by_test_id("stat-participants")).not_to_have_text("—", timeout=10_000)
        await _snapshot(screen, "screen")

        # the big screen at projector size as well
        await screen.set_viewport_size({"width": 1920, "height": 1080})
        await screen.wait_for_timeout(300)
        await _snapshot(screen, "screen-1920")
    finally:
        await h5_ctx.close()
        await dash_ctx.close()
    assert not problems, problems


async def test_reload_resumes_attempt(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await _register(page, base)
        await page.locator('[data-testid=contest-item][data-contest-id="demo"]').click()
        await page.get_by_test_id("start").click()
        stem = page.get_by_test_id("question-stem")
        await pw.expect(stem).to_be_visible(timeout=10_000)
        first = await stem.get_attribute("data-index")
        await page.get_by_test_id("option").first.click()
        await page.get_by_test_id("submit-answer").click()
        await page.wait_for_function(
            "() => !document.querySelector('[data-testid=submit-answer]') || "
            "document.querySelector('[data-testid=question-stem]').dataset.index !== " + repr(first)
        )
        await page.reload()
        await pw.expect(page.get_by_test_id("question-stem")).to_be_visible(timeout=10_000)
        assert await page.get_by_test_id("question-stem").get_attribute("data-index") != first
        await _answer_all(page)
        await page.get_by_test_id("finish").click()
        await pw.expect(page.get_by_test_id("score")).to_be_visible(timeout=10_000)
    finally:
        await ctx.close()
    assert not problems, problems


async def test_admin_page(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await page.goto(f"{base}/admin/?token={live_server.admin_token}")
        await pw.expect(page.locator("#main")).to_be_visible(timeout=10_000)
        assert "token=" not in page.url
        await _snapshot(page, "admin-import")
        await page.locator('#tabs button[data-tab="bank"]').click()
        await pw.expect(page.get_by_test_id("bank-row").first).to_be_visible(timeout=10_000)
        await _snapshot(page, "admin-bank")
        await page.locator('#tabs button[data-tab="contests"]').click()
        await pw.expect(page.locator('[data-testid=admin-contest-row][data-contest-id="demo"]')).to_be_visible(
            timeout=10_000
        )
        await page.locator('[data-testid=admin-contest-row][data-contest-id="demo"] button').first.click()
        await pw.expect(page.get_by_test_id("draw-row").first).to_be_visible(timeout=10_000)
        await pw.expect(page.get_by_test_id("draw-check")).not_to_be_empty(timeout=10_000)
        await _snapshot(page, "admin-contest")
    finally:
        await ctx.close()
    assert not problems, problems


async def test_pages_fit_360(live_server: Any, browser: Any) -> None:
    """No page overflows horizontally at 360 px, signed in or not."""
    base = live_server.url.rstrip("/")
    ctx = await browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    try:
        page = await ctx.new_page()
        for name, path in [
            ("h5-register-360", "/"),
            ("dashboard-login-360", "/dashboard/"),
            ("admin-login-360", "/admin/"),
            ("screen-360", "/screen/demo"),
        ]:
            await page.goto(base + path)
            await page.wait_for_timeout(800)
            await _snapshot(page, name)
    finally:
        await ctx.close()
