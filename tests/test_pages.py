"""Browser tests of the static pages, driving Debian's Chromium through Playwright.

Needs the ``live_server`` fixture (tests/fixtures/app.py): a running server with the published
contest "demo" made from contest/sample/*, with ``.url``, ``.admin_token`` and ``.organizer_token``.
Screenshots go to test-artifacts/ (phone size 375x812, desktop 1366x900 for the dashboard and
1920x1080 for the big screen), each checked for horizontal overflow.

The tests wait on conditions, never on fixed sleeps: the sample contest gives immediate feedback,
and the tests press "next" instead of waiting out the automatic advance (one question per attempt
still advances by itself, so that path stays covered).
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contest.auth import sign_ticket
from tests.fixtures.app import SAMPLE, TICKET_SECRET
from tests.fixtures.binaries import playwright
from tests.orgpick import pick_by_cascade

pw: Any = playwright()
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
DESKTOP = {"width": 1366, "height": 900}
PROJECTOR = {"width": 1920, "height": 1080}
VILLAGE = "360302002001"  # 江南省 / 云岭市 / 龙泉区 / ... / 荷塘村 in contest/sample/orgs.csv
VILLAGE_PATH = ["360300", "360302", "360302002"]
ROOT = "360000"
COUNTDOWN = re.compile(r"^\d\d:\d\d$")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("chromium_path"),  # skipped where Chromium is missing, failed under CI=1
]


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    async with pw.async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
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


async def _phone_page(browser: Any, problems: list[str], base_url: str) -> tuple[Any, Any]:
    """A phone-sized zh-CN context and its page, watched for console errors and failed requests."""
    ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await ctx.new_page()
    except BaseException:
        await ctx.close()
        raise
    _watch(page, problems, base_url)
    return ctx, page


async def _snapshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name}: horizontal overflow (scrollWidth, innerWidth) = {width}"


def _read(path: Any) -> bytes:
    return Path(path).read_bytes()


def _phone() -> str:
    return f"139{random.randint(0, 99_999_999):08d}"


async def _register(page: Any, base: str, shot: str | None = None) -> str:
    await page.goto(base + "/")
    await page.get_by_test_id("register-name").fill("测试用户")
    await page.get_by_test_id("register-phone").fill(_phone())
    await pick_by_cascade(page, [ROOT, *VILLAGE_PATH, VILLAGE])
    if shot:
        await _snapshot(page, shot)
    await page.get_by_test_id("register-submit").click()
    await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
    auth = await page.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
    assert auth and auth["user_id"], auth
    return str(auth["user_id"])


async def _start(page: Any) -> None:
    await page.locator('[data-testid=contest-item][data-contest-id="demo"]').click()
    await pw.expect(page.get_by_test_id("start")).to_be_visible()
    await page.get_by_test_id("start").click()
    await pw.expect(page.get_by_test_id("question-stem")).to_be_visible(timeout=10_000)


async def _answer_one(page: Any) -> str | None:
    """Answer the question on screen (first option); with immediate feedback, check the verdict
    shows and press "next". Returns the answered index, or None when only `finish` is left."""
    await page.wait_for_function(
        """() => {
            const stem = document.querySelector('[data-testid=question-stem]');
            const sub = document.querySelector('[data-testid=submit-answer]');
            const fin = document.querySelector('[data-testid=finish]');
            const open = document.querySelector('[data-testid=option]:not([disabled])');
            return (stem && sub && open) || (fin && !sub);
        }""",
        timeout=10_000,
    )
    submit = page.get_by_test_id("submit-answer")
    if await submit.count() == 0:
        return None
    stem = page.get_by_test_id("question-stem")
    index = await stem.get_attribute("data-index")
    await pw.expect(stem).not_to_be_empty()
    await pw.expect(page.get_by_test_id("countdown")).to_have_text(COUNTDOWN)
    options = page.get_by_test_id("option")
    await options.first.click()
    if await page.locator("[data-testid=option].multi").count():  # a multiple-choice question: pick two
        await options.nth(1).click()
        await pw.expect(page.locator("[data-testid=option][aria-pressed=true]")).to_have_count(2)
    await submit.click()
    # the verdict shows on the same question (the contest's feedback is immediate)
    await page.wait_for_function(
        """(idx) => {
            const stem = document.querySelector('[data-testid=question-stem]');
            return stem && stem.dataset.index === idx && document.querySelector('[data-testid=feedback]');
        }""",
        arg=index,
        timeout=10_000,
    )
    # "next" if it is still there (atomic in the page: the automatic advance may have run already)
    await page.evaluate("() => { const n = document.querySelector('[data-testid=next]'); if (n) n.click(); }")
    return index



async def _answer_all(page: Any) -> int:
    answered = 0
    for _ in range(200):
        if await _answer_one(page) is None:
            return answered
        answered += 1
    raise AssertionError("too many questions")


async def _api_finisher(session: aiohttp.ClientSession, base: str, org_id: str, name: str) -> str:
    """A participant who registers, answers everything (first option) and finishes, over the API."""
    async with session.post(f"{base}/api/v1/auth/register",
                            json={"name": name, "phone": _phone(), "org_id": org_id}) as resp:
        assert resp.status == 201, await resp.text()
        user = await resp.json()
    headers = {"Authorization": f"Bearer {user['token']}"}
    async with session.post(f"{base}/api/v1/contests/demo/attempts", headers=headers) as resp:
        attempt = await resp.json()
    answers = [{"index": q["index"], "choice": q["options"][0]["key"]} for q in attempt["questions"]]
    async with session.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/submit", headers=headers,
                            json={"answers": answers}) as resp:
        assert resp.status == 200, await resp.text()
    return str(user["user_id"])


async def test_participant_flow_dashboard_and_screen(live_server: Any, browser: Any) -> None:
    """Register, play a whole attempt, see score, rank, percentile and boards; the open dashboard
    and big screen show the new finisher within 3 s."""
    base = live_server.url.rstrip("/")
    problems: list[str] = []

    h5_ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    dash_ctx = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await h5_ctx.new_page()
        _watch(page, problems, base)
        user_id = await _register(page, base, shot="h5-register")
        await _snapshot(page, "h5-contests")
        await page.locator('[data-testid=contest-item][data-contest-id="demo"]').click()
        await pw.expect(page.get_by_test_id("start")).to_be_visible()
        await _snapshot(page, "h5-detail")
        await page.get_by_test_id("start").click()
        await pw.expect(page.get_by_test_id("question-stem")).to_be_visible(timeout=10_000)
        await _snapshot(page, "h5-question")
        await _answer_one(page)
        await _snapshot(page, "h5-question-2")
        answered = 1 + await _answer_all(page)
        assert answered == 10  # the sample contest draws 10 questions
        await _snapshot(page, "h5-last")

        # the organizer dashboard and the big screen are open before the participant finishes
        dash = await dash_ctx.new_page()
        _watch(dash, problems, base)
        await dash.goto(f"{base}/dashboard/?token={live_server.organizer_token}&contest=demo")
        await pw.expect(dash.get_by_test_id("stat-participants")).to_be_visible(timeout=10_000)
        assert "token=" not in dash.url, "the token must be removed from the address bar"
        assert await dash.evaluate("sessionStorage.getItem('quiz.staffToken')") == live_server.organizer_token
        await pw.expect(dash.locator("#live-dot.on")).to_be_attached(timeout=10_000)  # the feed is connected
        screen = await dash_ctx.new_page()
        _watch(screen, problems, base)
        await screen.goto(f"{base}/screen/demo")
        await pw.expect(screen.locator("#live-dot.on")).to_be_attached(timeout=10_000)

        await page.get_by_test_id("finish").click()
        await pw.expect(page.get_by_test_id("score")).to_be_visible(timeout=10_000)
        # both live views show the new finisher within 3 s of the result screen
        await asyncio.gather(*[
            pw.expect(view.locator(f'[data-testid=leaderboard-row][data-user-id="{user_id}"]')).to_be_visible(
                timeout=3_000)
            for view in (dash, screen)
        ])

        assert (await page.get_by_test_id("score").inner_text()).strip() not in ("", "—")
        await pw.expect(page.get_by_test_id("rank")).to_have_text("1")
        await pw.expect(page.get_by_test_id("percentile")).to_contain_text("100")
        await pw.expect(page.locator(f'[data-testid=around-me] [data-user-id="{user_id}"]')).to_be_visible()
        # the leaderboards by whole contest and by own org list the player
        await pw.expect(page.locator(f'[data-testid=boards] [data-user-id="{user_id}"]')).to_be_visible()
        await page.locator('[data-testid=board-tab][data-tab="org"]').click()
        await pw.expect(page.locator('[data-testid=board-tab][data-tab="org"]')).to_have_attribute(
            "aria-selected", "true")
        await pw.expect(page.locator(f'[data-testid=boards] [data-user-id="{user_id}"]')).to_be_visible()
        await _snapshot(page, "h5-result")

        await pw.expect(dash.get_by_test_id("org-row").first).to_be_visible(timeout=10_000)
        await pw.expect(dash.get_by_test_id("stat-participants")).to_have_text("1", timeout=5_000)
        await _snapshot(dash, "dashboard")
        await pw.expect(screen.get_by_test_id("stat-participants")).to_have_text("1", timeout=5_000)
        # the city of the player's village counts one participant on the big screen
        city = screen.locator(f'[data-testid=org-row][data-org-id="{VILLAGE_PATH[0]}"]')
        await pw.expect(city.locator("td").nth(2)).to_have_text("1", timeout=3_000)
        await _snapshot(screen, "screen")
        await screen.set_viewport_size(PROJECTOR)
        await _snapshot(screen, "screen-1920")
    finally:
        await h5_ctx.close()
        await dash_ctx.close()
    assert not problems, problems


async def test_reload_resumes_attempt(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    ctx, page = await _phone_page(browser, problems, base)
    try:
        await _register(page, base)
        await _start(page)
        stem = page.get_by_test_id("question-stem")
        first = await stem.get_attribute("data-index")
        await page.get_by_test_id("option").first.click()
        await page.get_by_test_id("submit-answer").click()
        # no "next" pressed: after the verdict the app moves on by itself
        await page.wait_for_function(
            "(idx) => document.querySelector('[data-testid=question-stem]')?.dataset.index !== idx",
            arg=first, timeout=10_000,
        )
        await page.reload()
        await pw.expect(stem).to_be_visible(timeout=10_000)
        assert await stem.get_attribute("data-index") != first
        assert await _answer_all(page) == 9
        await page.get_by_test_id("finish").click()
        await pw.expect(page.get_by_test_id("score")).to_be_visible(timeout=10_000)
    finally:
        await ctx.close()
    assert not problems, problems


async def test_answer_given_offline_is_delivered_when_back_online(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    ctx, page = await _phone_page(browser, problems, base)
    try:
        await _register(page, base)
        await _start(page)
        stem = page.get_by_test_id("question-stem")
        index = await stem.get_attribute("data-index")

        await ctx.set_offline(True)
        await page.get_by_test_id("option").first.click()
        await page.get_by_test_id("submit-answer").click()
        await pw.expect(page.locator(".retrying")).to_be_visible(timeout=10_000)
        pending = await page.evaluate("JSON.parse(localStorage.getItem('quiz.attempt'))")
        assert pending["pending"]["index"] == int(index or -1), pending  # kept for a reload, too
        await _snapshot(page, "h5-offline")

        await ctx.set_offline(False)
        await pw.expect(page.get_by_test_id("feedback")).to_be_visible(timeout=5_000)
        assert await stem.get_attribute("data-index") == index

        # a reply lost on the way back: the server took the answer, the phone saw a network error;
        # the retry sends the same choice again and gets the same verdict (idempotent), no conflict
        lost: list[str] = []

        async def lose_first_reply(route: Any) -> None:
            if route.request.method == "POST" and not lost:
                reply = await route.fetch()
                lost.append(await reply.text())
                await route.abort("connectionreset")
            else:
                await route.continue_()

        await page.route("**/api/v1/attempts/*/answers", lose_first_reply)
        await page.evaluate("() => document.querySelector('[data-testid=next]')?.click()")
        second = await _answer_one(page)
        assert lost and '"index"' in lost[0], lost
        assert await page.locator(".toast-error").count() == 0

        auth = await page.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
        async with aiohttp.ClientSession() as session, session.get(
            f"{base}/api/v1/attempts/{pending['attempt_id']}",
            headers={"Authorization": f"Bearer {auth['token']}"},
        ) as resp:
            attempt = await resp.json()
        assert sorted(a["index"] for a in attempt["answered"]) == sorted([int(index or -1), int(second or -1)])
    finally:
        await ctx.close()
    assert not problems, problems


async def test_ticket_arrival_and_english(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    ticket = sign_ticket(TICKET_SECRET.encode(), {"sub": f"wx-{_phone()}", "name": "微信用户", "org_id": VILLAGE,
                                                  "exp": int(time.time()) + 600})
    ctx, page = await _phone_page(browser, problems, base)
    try:
        await page.goto(f"{base}/?ticket={ticket}")
        await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
        assert "ticket=" not in page.url
        assert await page.get_by_test_id("register-name").count() == 0
        await page.locator('[data-testid=contest-item][data-contest-id="demo"]').click()
        await pw.expect(page.get_by_test_id("start")).to_have_text("开始答题")
        await page.get_by_test_id("lang-toggle").click()
        await pw.expect(page.get_by_test_id("start")).to_have_text("Start")
        await _snapshot(page, "h5-detail-en")
        await page.reload()  # the choice is remembered
        await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
        assert await page.evaluate("document.documentElement.lang") == "en"
    finally:
        await ctx.close()
    assert not problems, problems


async def test_dashboard_drilldown_and_exports(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    async with aiohttp.ClientSession() as session:
        users = [await _api_finisher(session, base, VILLAGE, n) for n in ("赵一", "钱二")]
        users.append(await _api_finisher(session, base, "360101001001", "孙三"))
    ctx = await browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    try:
        page = await ctx.new_page()
        _watch(page, problems, base)
        await page.goto(f"{base}/dashboard/")
        await pw.expect(page.get_by_test_id("login-token")).to_be_visible()
        await page.get_by_test_id("login-token").fill(live_server.organizer_token)
        await page.get_by_test_id("login-submit").click()
        for uid in users:
            await pw.expect(page.locator(f'[data-testid=leaderboard-row][data-user-id="{uid}"]')).to_be_visible(
                timeout=10_000)
        await pw.expect(page.get_by_test_id("stat-participants")).to_have_text("3", timeout=10_000)
        await pw.expect(page.get_by_test_id("question-row").first).to_be_visible(timeout=10_000)
        await pw.expect(page.locator("#chart-answers canvas")).to_be_attached(timeout=10_000)
        await _snapshot(page, "dashboard-desktop")

        # org ranking by participation rate, from the province down to the village
        for level, org_id in enumerate(VILLAGE_PATH, start=2):
            row = page.locator(f'[data-testid=org-row][data-org-id="{org_id}"]')
            await pw.expect(row).to_have_attribute("data-level", str(level), timeout=10_000)
            await row.click()
            await pw.expect(page.get_by_test_id("crumb").last).to_have_attribute("aria-current", "page")
        village = page.locator(f'[data-testid=org-row][data-org-id="{VILLAGE}"]')
        await pw.expect(village).to_have_attribute("data-level", "5", timeout=10_000)
        await pw.expect(village.locator("td").nth(3)).to_have_text("2")  # participants
        # the top list follows the scope: only the two players of that village's town
        await pw.expect(page.get_by_test_id("leaderboard-row")).to_have_count(2, timeout=10_000)
        await _snapshot(page, "dashboard-drilldown")

        # exports are fetched with the bearer token and saved from a blob
        async with page.expect_download() as info:
            await page.get_by_test_id("export-results-csv").click()
        download = await info.value
        rows = list(csv.reader(io.StringIO(_read(await download.path()).decode("utf-8-sig"))))
        assert rows[0][:3] == ["attempt_id", "user_id", "name"], rows[0]
        assert {r[1] for r in rows[1:]} == set(users[:2])  # scoped to the town drilled into
        async with page.expect_download() as info:
            await page.get_by_test_id("export-answers-xlsx").click()
        download = await info.value
        assert download.suggested_filename.endswith(".xlsx")
        assert _read(await download.path())[:2] == b"PK"

        # back to the top of the breadcrumb
        await page.get_by_test_id("crumb").first.click()
        await pw.expect(page.get_by_test_id("leaderboard-row")).to_have_count(3, timeout=10_000)
    finally:
        await ctx.close()
    assert not problems, problems


BAD_QUESTIONS = (
    "type,stem,option_a,option_b,option_c,answer,category,difficulty\n"
    "single,好的题目,甲,乙,丙,A,法律,1\n"
    "single,,甲,乙,丙,A,法律,1\n"            # row 3: no stem
    "single,答案越界,甲,乙,丙,F,法律,1\n"     # row 4: answer not an option
    "guess,题型不对,甲,乙,丙,A,法律,9\n"      # row 5: bad type and difficulty
)


async def test_admin_pages(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    ctx, page = await _phone_page(browser, problems, base)
    try:
        await page.goto(f"{base}/admin/?token={live_server.admin_token}")
        await pw.expect(page.locator("#main")).to_be_visible(timeout=10_000)
        assert "token=" not in page.url

        # imports: every bad row in a table; a good file imports
        questions = page.get_by_test_id("import-questions")
        await questions.locator("input[type=file]").set_input_files(
            {"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_QUESTIONS.encode()})
        await questions.locator("button[type=submit]").click()
        errors = questions.get_by_test_id("import-errors").locator("tbody tr")
        await pw.expect(errors.first).to_be_visible(timeout=10_000)
        rows = {int(r) for r in await errors.locator("td:first-child").all_inner_texts()}
        assert rows == {3, 4, 5}, rows
        orgs = page.get_by_test_id("import-orgs")
        await orgs.locator("input[type=file]").set_input_files(str(SAMPLE / "orgs.csv"))
        await orgs.locator("button[type=submit]").click()
        await pw.expect(orgs.get_by_test_id("import-ok")).to_be_visible(timeout=10_000)
        await _snapshot(page, "admin-import")

        # the bank: browse and search
        await page.locator('#tabs button[data-tab="bank"]').click()
        await pw.expect(page.get_by_test_id("bank-row").first).to_be_visible(timeout=10_000)
        await page.locator("#bank-q").fill("宪法")
        await page.wait_for_function(
            "() => { const r = [...document.querySelectorAll('[data-testid=bank-row]')];"
            " return r.length > 0 && r.every((x) => x.textContent.includes('宪法')); }", timeout=10_000)
        await _snapshot(page, "admin-bank")

        # a new contest: draw rules checked as you type, saved, published, a paper previewed
        await page.locator('#tabs button[data-tab="contests"]').click()
        await pw.expect(page.locator('[data-testid=admin-contest-row][data-contest-id="demo"]')).to_be_visible(
            timeout=10_000)
        await page.locator("#new-contest").click()
        form = page.locator("#contest-form")
        await form.locator("#cf-contest_id").fill("ui-made")
        await form.locator("#cf-title").fill("界面创建的竞赛")
        count = page.get_by_test_id("draw-row").first.locator("input[type=number]")
        await count.fill("999")
        await pw.expect(page.get_by_test_id("draw-check").locator(".check-bad")).to_be_visible(timeout=10_000)
        await count.fill("5")
        await pw.expect(page.get_by_test_id("draw-check").locator(".check-ok")).to_be_visible(timeout=10_000)
        await _snapshot(page, "admin-contest")
        await page.get_by_test_id("contest-save").click()
        await page.wait_for_selector(".toast-ok, .toast-error")
        assert await page.locator(".toast-error").count() == 0, await page.locator(".toast").all_inner_texts()
        row = page.locator('[data-testid=admin-contest-row][data-contest-id="ui-made"]')
        await pw.expect(row).to_be_visible(timeout=10_000)
        await row.get_by_test_id("publish").click()
        await pw.expect(row.locator(".badge.published")).to_be_visible(timeout=10_000)
        await row.get_by_test_id("preview").click()
        await pw.expect(page.get_by_test_id("preview-question")).to_have_count(5, timeout=10_000)
        await _snapshot(page, "admin-preview")

        # editing keeps the settings: open it again and change the title
        await row.get_by_test_id("edit").click()
        await pw.expect(form.locator("#cf-title")).to_have_value("界面创建的竞赛", timeout=10_000)
        await form.locator("#cf-title").fill("改过的标题")
        await page.get_by_test_id("contest-save").click()
        await pw.expect(row).to_contain_text("改过的标题", timeout=10_000)
    finally:
        await ctx.close()
    assert not problems, problems


async def test_pages_fit_360(live_server: Any, browser: Any) -> None:
    """No page overflows horizontally at 360 px, signed in or not."""
    base = live_server.url.rstrip("/")
    ctx = await browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    try:
        page = await ctx.new_page()
        await page.goto(base + "/")
        await pw.expect(page.locator("[data-testid=org-level][data-level='2'] option[value='360100']")).to_be_attached()
        await _snapshot(page, "h5-register-360")
        for name, path in [("dashboard-login-360", "/dashboard/"), ("admin-login-360", "/admin/")]:
            await page.goto(base + path)
            await pw.expect(page.get_by_test_id("login-token")).to_be_visible()
            await _snapshot(page, name)
        await page.goto(base + "/screen/demo")
        await pw.expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)
        await _snapshot(page, "screen-360")
    finally:
        await ctx.close()
