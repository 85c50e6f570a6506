"""Browser tests of the organizers' campaign tools (issue 16), in Chinese: import templates
downloaded and re-imported, Chinese error messages with the form's labels, the review queue (a
void moves the big screen's board), the question editor.

Same Chromium set-up as tests/test_pages.py (its constants and helpers).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
import orjson
import pytest

from tests.fixtures.waiting import until
from tests.test_pages import CHROMIUM_ARGS, DESKTOP, _snapshot, _watch, pw

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("chromium_path"),
]


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    async with pw.async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


BAD_CSV = "题型,题干,选项A,选项B,答案\n单选,,甲,乙,A\n单选,第二题（　）,甲,乙,E\n"


async def _admin_page(browser: Any, base: str, token: str, problems: list[str], tab: str = "import") -> tuple[Any, Any]:
    ctx = await browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    page = await ctx.new_page()
    _watch(page, problems, base)
    await page.goto(f"{base}/admin/?token={token}#{tab}")
    await pw.expect(page.locator("#main")).to_be_visible(timeout=10_000)
    return ctx, page


async def test_templates_download_and_reimport_and_chinese_errors(live_server: Any, browser: Any,
                                                                 tmp_path: Path) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    ctx, page = await _admin_page(browser, base, live_server.admin_token, problems)
    try:
        questions = page.get_by_test_id("import-questions")
        for fmt in ("xlsx", "csv"):
            async with page.expect_download() as info:
                await page.get_by_test_id(f"template-questions-{fmt}").click()
            download = await info.value
            path = tmp_path / f"questions.{fmt}"
            await download.save_as(str(path))
            assert download.suggested_filename == f"题库导入模板.{fmt}"
            if fmt == "xlsx":
                header = next(openpyxl.load_workbook(path, read_only=True).active.iter_rows(values_only=True))
                assert header[:4] == ("编号", "题型", "题干", "选项A") and "解析" in header
            else:
                assert path.read_bytes().startswith("\ufeff编号,题型,题干".encode())
            await questions.locator("input[type=file]").set_input_files(str(path))
            await questions.locator("button[type=submit]").click()
            ok = questions.get_by_test_id("import-ok")
            await pw.expect(ok).to_be_visible(timeout=10_000)
            # the first upload adds the two examples, the second (same ids) finds them there
            await pw.expect(ok).to_have_text("导入 2 条，更新 0 条" if fmt == "xlsx" else "导入 0 条，更新 2 条")
        orgs = page.get_by_test_id("import-orgs")
        async with page.expect_download() as info:
            await page.get_by_test_id("template-orgs-xlsx").click()
        path = tmp_path / "orgs.xlsx"
        await (await info.value).save_as(str(path))
        await orgs.locator("input[type=file]").set_input_files(str(path))
        await orgs.locator("button[type=submit]").click()
        await pw.expect(orgs.get_by_test_id("import-ok")).to_have_text("导入 2 条，更新 0 条", timeout=10_000)

        # a bad file: Chinese row errors, columns by their template headers
        await questions.locator("input[type=file]").set_input_files(
            {"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_CSV.encode()})
        await questions.locator("button[type=submit]").click()
        table = questions.get_by_test_id("import-errors")
        await pw.expect(table).to_be_visible(timeout=10_000)
        texts = await table.locator("tbody tr").all_inner_texts()
        assert any("题干" in r and "题干为空" in r for r in texts), texts
        assert any("答案" in r and "答案“E”无效" in r for r in texts), texts
        await _snapshot(page, "organizer-import-errors")

        # a contest whose end is before its start: the toast names both fields by their labels
        await page.locator('#tabs button[data-tab="contests"]').click()
        await page.locator("#new-contest").click()
        form = page.locator("#contest-form")
        await form.locator("#cf-title").fill("时间有误的竞赛")
        await form.locator("#cf-starts_at").fill("2030-05-02T10:00")
        await form.locator("#cf-ends_at").fill("2030-05-01T10:00")
        await form.get_by_test_id("contest-save").click()
        toast = page.get_by_test_id("toast").filter(has_text="结束时间必须晚于开始时间")
        await pw.expect(toast.first).to_be_visible(timeout=10_000)
        assert "填写的内容有误" in await toast.first.inner_text()
        # both ends of the range are marked in the form
        for name in ("starts_at", "ends_at"):
            await pw.expect(form.locator(f"#cf-{name}")).to_have_attribute("aria-invalid", "true")
        assert not problems, problems
    finally:
        await ctx.close()


async def _flagged_players(base: str, admin: str, names: list[str]) -> str:
    """A contest where every answer is flagged (minimum 60 s), played by ``names``.  Returns its id."""
    headers = {"Authorization": f"Bearer {admin}"}
    now = int(time.time() * 1000)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/api/v1/admin/contests/demo", headers=headers) as resp:
            demo = await resp.json()
        body = {"contest_id": "fast", "title": "审核演示（快）", "starts_at": now - 60_000, "ends_at": now + 3_600_000,
                "paper": {**demo["paper"], "shuffle_options": False}, "min_answer_ms": 60_000,
                "attempts_per_day": 3}
        async with s.post(f"{base}/api/v1/admin/contests", json=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
        async with s.post(f"{base}/api/v1/admin/contests/fast/publish", headers=headers) as resp:
            assert resp.status == 200
        for n, name in enumerate(names):
            async with s.post(f"{base}/api/v1/auth/register",
                              json={"name": name, "phone": f"1370000{n:04d}", "org_id": "360302002001"}) as resp:
                user = await resp.json()
            h = {"Authorization": f"Bearer {user['token']}"}
            async with s.post(f"{base}/api/v1/contests/fast/attempts", headers=h) as resp:
                attempt = await resp.json()
            # different answer counts, so the two players differ on the board
            answers = [{"index": q["index"], "choice": "A"} for q in attempt["questions"][: len(names) - n]]
            async with s.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/submit", headers=h,
                              json={"answers": answers}) as resp:
                assert resp.status == 200, await resp.text()

        async def flagged() -> bool:
            async with s.get(f"{base}/api/v1/admin/contests/fast/flagged", headers=headers) as resp:
                return (await resp.json())["total"] == len(names)

        await until(flagged, within=10, what="the flagged attempts in storage")
    return "fast"


async def _board_top(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/api/v1/contests/fast/leaderboard") as resp:
            entries = (await resp.json())["entries"]
    assert entries
    return entries[0]


async def test_review_queue_void_moves_the_screen_board(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    names = ["甲快手", "乙快手"]  # masked on the public screen as 甲* and 乙*
    cid = await _flagged_players(base, live_server.admin_token, names)
    problems: list[str] = []
    ctx, page = await _admin_page(browser, base, live_server.admin_token, problems, tab="review")
    screen = await ctx.new_page()
    try:
        await page.get_by_test_id("rv-contest").select_option(cid)
        rows = page.get_by_test_id("rv-row")
        await pw.expect(rows).to_have_count(2, timeout=10_000)
        top = await _board_top(base)
        await screen.goto(f"{base}/screen/{cid}")
        # the podium and the table: the member's row or card wherever their rank puts it
        on_board = screen.locator(f'[data-testid=leaderboard-row][data-user-id="{top["user_id"]}"]')
        await pw.expect(on_board).to_have_count(1, timeout=10_000)
        await pw.expect(on_board).to_contain_text(top["name"])

        # evidence: every answer under the 60 s minimum, one IP and one device
        row = page.locator(f'[data-testid=rv-row][data-user-id="{top["user_id"]}"]')
        assert (await row.locator("td").nth(5).inner_text()) == "1"
        assert (await row.locator("td").nth(6).inner_text()) == "1"
        await row.get_by_test_id("rv-evidence-open").click()
        times = page.get_by_test_id("rv-answer-time")
        await pw.expect(times.first).to_be_visible(timeout=10_000)
        assert await page.locator("#rv-evidence li.check-bad").count() == await times.count() > 0

        # a reason is required; then the void moves the open screen's board at once
        await row.get_by_test_id("rv-void").click()
        await pw.expect(page.get_by_test_id("toast").filter(has_text="请先填写处理原因").first).to_be_visible()
        await page.get_by_test_id("rv-reason").fill("答题速度远超正常水平")
        await row.get_by_test_id("rv-void").click()
        await pw.expect(rows).to_have_count(1, timeout=10_000)  # the pending filter hides the decided one
        await pw.expect(on_board).to_have_count(0, timeout=10_000)
        audit = page.get_by_test_id("rv-audit-row")
        await pw.expect(audit.first).to_contain_text("答题速度远超正常水平", timeout=10_000)

        await page.get_by_test_id("rv-status").select_option("decided")
        await pw.expect(rows).to_have_count(1, timeout=10_000)
        await pw.expect(rows.first.get_by_test_id("rv-decision")).to_contain_text("已作废")
        await _snapshot(page, "organizer-review")
        # restore puts the member back on the board
        await rows.first.get_by_test_id("rv-restore").click()
        await pw.expect(on_board).to_have_count(1, timeout=10_000)
        assert not problems, problems
    finally:
        await ctx.close()


async def test_question_editor_page(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    problems: list[str] = []
    ctx, page = await _admin_page(browser, base, live_server.admin_token, problems, tab="bank")
    try:
        editor = page.get_by_test_id("question-editor")
        # the import's checks, in Chinese
        await page.get_by_test_id("new-question").click()
        await editor.get_by_test_id("qe-options").fill("甲\n乙")
        await editor.get_by_test_id("qe-answer").fill("B")
        await editor.get_by_test_id("qe-save").click()
        await pw.expect(page.get_by_test_id("toast").filter(has_text="题干为空").first).to_be_visible(timeout=10_000)
        # a new question, text kept as typed
        stem = "页面新增：下列说法正确的是（　）"
        await editor.get_by_test_id("qe-stem").fill(stem)
        await editor.get_by_test_id("qe-category").fill("页面编辑")
        await editor.get_by_test_id("qe-save").click()
        await pw.expect(page.get_by_test_id("toast").filter(has_text="已保存（版本 1）").first).to_be_visible(
            timeout=10_000)
        await page.locator("#bank-q").fill("页面新增")
        row = page.get_by_test_id("bank-row")
        await pw.expect(row).to_have_count(1, timeout=10_000)
        await pw.expect(row.first).to_contain_text(stem)
        qid = await row.first.get_attribute("data-qid")

        # drawn into an attempt, then edited: a new version, the served one retired
        await _draw_category(base, live_server.admin_token, "页面编辑")
        await row.first.get_by_test_id("qe-edit").click()
        await editor.get_by_test_id("qe-stem").fill("页面修改：下列说法正确的是（　）")
        await editor.get_by_test_id("qe-save").click()
        await pw.expect(page.get_by_test_id("toast").filter(has_text=f"新版本 {qid}~2").first).to_be_visible(
            timeout=10_000)
        await page.locator("#bank-q").fill("页面")
        await pw.expect(row).to_have_count(2, timeout=10_000)
        old = page.locator(f'[data-testid=bank-row][data-qid="{qid}"]')
        await pw.expect(old.get_by_test_id("retired")).to_have_text("已停用")
        await pw.expect(old).to_contain_text(stem)
        await pw.expect(page.locator(f'[data-testid=bank-row][data-qid="{qid}~2"]')).to_contain_text("页面修改")
        await _snapshot(page, "campaign-editor")
        assert not problems, problems
    finally:
        await ctx.close()


async def _draw_category(base: str, admin: str, category: str) -> None:
    """A contest drawing one question of ``category``, and one attempt started in it."""
    headers = {"Authorization": f"Bearer {admin}"}
    now = int(time.time() * 1000)
    async with aiohttp.ClientSession() as s:
        body = {"contest_id": "drawn", "title": "抽题", "starts_at": now - 60_000, "ends_at": now + 3_600_000,
                "paper": {"draw": [{"category": category, "count": 1}]}}
        async with s.post(f"{base}/api/v1/admin/contests", json=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
        async with s.post(f"{base}/api/v1/admin/contests/drawn/publish", headers=headers) as resp:
            assert resp.status == 200
        async with s.post(f"{base}/api/v1/auth/register",
                          json={"name": "抽题人", "phone": "13600000001", "org_id": "360302002001"}) as resp:
            user = await resp.json()
        async with s.post(f"{base}/api/v1/contests/drawn/attempts",
                          headers={"Authorization": f"Bearer {user['token']}"}) as resp:
            assert resp.status == 201, await resp.text()


async def _api_player(s: aiohttp.ClientSession, base: str, org_id: str, name: str, phone: str, n: int) -> None:
    async with s.post(f"{base}/api/v1/auth/register", json={"name": name, "phone": phone, "org_id": org_id}) as r:
        user = await r.json()
    h = {"Authorization": f"Bearer {user['token']}"}
    async with s.post(f"{base}/api/v1/contests/demo/attempts", headers=h) as r:
        attempt = await r.json()
    answers = [{"index": q["index"], "choice": q["options"][0]["key"]} for q in attempt["questions"][:n]]
    async with s.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/submit", headers=h,
                      json={"answers": answers}) as r:
        assert r.status == 200, await r.text()


async def test_dashboard_drilldown_scopes_every_figure(live_server: Any, browser: Any) -> None:
    """After drilling down to a town every number is the town's; organizer names are shown in full
    at every level (the whole-contest list no longer comes masked from the public feed)."""
    base = live_server.url.rstrip("/")
    async with aiohttp.ClientSession() as s:
        await _api_player(s, base, "360302002001", "张荷塘", "13500000001", 3)  # 荷塘村, in the town drilled into
        await _api_player(s, base, "360302002001", "李荷塘", "13500000002", 2)
        await _api_player(s, base, "360301001001", "王别处", "13500000003", 4)  # elsewhere in the province
    problems: list[str] = []
    ctx = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = await ctx.new_page()
    _watch(page, problems, base)
    try:
        await page.goto(f"{base}/dashboard/?token={live_server.organizer_token}&contest=demo")
        await pw.expect(page.get_by_test_id("stat-answers")).to_have_text("9", timeout=10_000)
        rows = page.get_by_test_id("leaderboard-row")
        await pw.expect(rows).to_have_count(3, timeout=10_000)
        await pw.expect(page.get_by_test_id("leaderboard")).to_contain_text("王别处")  # full, at the top level
        for org_id in ("360300", "360302", "360302002"):
            row = page.locator(f'[data-testid=org-row][data-org-id="{org_id}"]')
            await pw.expect(row).to_be_visible(timeout=10_000)
            await row.click()
        await pw.expect(page.get_by_test_id("stat-answers")).to_have_text("5", timeout=10_000)
        await pw.expect(page.get_by_test_id("stat-participants")).to_have_text("2", timeout=10_000)
        await pw.expect(rows).to_have_count(2, timeout=10_000)
        await pw.expect(page.get_by_test_id("leaderboard")).to_contain_text("张荷塘")
        # the per-question table and the timeline are the town's too
        answered = await page.evaluate("""async () => {
            const tok = sessionStorage.getItem('quiz.staffToken');
            const r = await fetch('/api/v1/admin/contests/demo/timeline?org_id=360302002',
                                  {headers: {Authorization: 'Bearer ' + tok}});
            return (await r.json()).points.reduce((a, p) => a + p.answers, 0);
        }""")
        assert answered == 5
        counts = [int(x) for x in await page.locator("[data-testid=question-row] td:nth-child(2)").all_inner_texts()]
        assert sum(counts) == 5, counts
        await _snapshot(page, "organizer-dashboard-scoped")
        assert not problems, problems
    finally:
        await ctx.close()


def _perfect(attempt: dict[str, Any]) -> list[dict[str, Any]]:
    """Every answer right: the sample bank's keys, mapped through the shuffled options by text."""
    from tests.fixtures.app import SAMPLE

    bank = {q["stem"]: q for q in orjson.loads((SAMPLE / "questions.json").read_bytes())}
    out = []
    for q in attempt["questions"]:
        src = bank[q["stem"]]
        right = {src["options"][ord(k) - 65] for k in src["answer"]}
        keys = [o["key"] for o in q["options"] if o["text"] in right]
        out.append({"index": q["index"], "choice": keys if q["type"] == "multiple" else keys[0]})
    return out


async def _hall_checks(page: Any, size: dict[str, int], min_font: float) -> None:
    await page.set_viewport_size(size)
    await page.wait_for_timeout(300)  # one layout pass after the resize (fitRows runs on resize)
    m = await page.evaluate("""() => {
        const d = document.documentElement;
        const td = document.querySelector('#top-body tr:not([hidden]) td:nth-child(2)');
        const score = document.querySelector('#top-body tr:not([hidden]) td.score');
        const boxes = [...document.querySelectorAll('#top-fit, #org-fit')].map((b) => {
            const r = b.getBoundingClientRect();
            const rows = [...b.querySelectorAll('tbody tr:not([hidden])')].map((x) => x.getBoundingClientRect());
            return {bottom: r.bottom, right: r.right, rows: rows.map((x) => [x.bottom, x.right])};
        });
        const orgs = document.querySelector('.s-orgs').getBoundingClientRect();
        const qr = document.getElementById('join-qr');
        return {sw: d.scrollWidth, sh: d.scrollHeight, w: innerWidth, h: innerHeight,
                font: td ? parseFloat(getComputedStyle(td).fontSize) : 0,
                scoreFont: score ? parseFloat(getComputedStyle(score).fontSize) : 0,
                boxes, orgs: [orgs.left, orgs.right, orgs.height],
                qr: [qr.naturalWidth, qr.getBoundingClientRect().bottom],
                podium: document.querySelectorAll('#podium [data-testid=leaderboard-row]').length,
                rows: document.querySelectorAll('#top-body tr:not([hidden])').length};
    }""")
    assert m["sw"] <= m["w"] and m["sh"] <= m["h"], f"{size}: overflow {m}"
    assert m["font"] >= min_font and m["scoreFont"] > m["font"], f"{size}: table text {m['font']} px"
    for box in m["boxes"]:
        for bottom, right in box["rows"]:
            assert bottom <= box["bottom"] + 1 and right <= box["right"] + 1, f"{size}: a row is cut {m}"
    assert m["podium"] == 3 and m["rows"] >= 3, m
    left, right, height = m["orgs"]
    assert left > m["w"] * 0.45 and right >= m["w"] * 0.95 and height > m["h"] * 0.55, f"org chart {m['orgs']}"
    assert m["qr"][0] > 0 and m["qr"][1] <= m["h"], m["qr"]


async def test_big_screen_for_a_hall(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    async with aiohttp.ClientSession() as s:
        for i in range(9):
            await _api_player(s, base, "360302002001" if i % 2 else "360301001001", f"选手{i}号",
                              f"1340000{i:04d}", 2 + i % 7)
    problems: list[str] = []
    ctx = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = await ctx.new_page()
    _watch(page, problems, base)
    try:
        await page.goto(f"{base}/screen/demo")
        await pw.expect(page.locator("#podium [data-testid=leaderboard-row]")).to_have_count(3, timeout=10_000)
        await pw.expect(page.locator("#join-qr")).to_have_js_property("complete", True)
        await _hall_checks(page, {"width": 1920, "height": 1080}, 28)
        await _snapshot(page, "screen-hall-1920")

        # a perfect score takes first place: the podium changes and the others show their move down
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/api/v1/auth/register",
                              json={"name": "满分王", "phone": "13499999999", "org_id": "360302002001"}) as r:
                user = await r.json()
            h = {"Authorization": f"Bearer {user['token']}"}
            async with s.post(f"{base}/api/v1/contests/demo/attempts", headers=h) as r:
                attempt = await r.json()
            async with s.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/submit", headers=h,
                              json={"answers": _perfect(attempt)}) as r:
                assert (await r.json())["correct_count"] == len(attempt["questions"])
        first = page.locator("#podium .pod.r1")
        await pw.expect(first).to_have_attribute("data-user-id", user["user_id"], timeout=10_000)
        await pw.expect(page.get_by_test_id("rank-down").first).to_be_attached(timeout=5_000)

        await _hall_checks(page, {"width": 1366, "height": 768}, 16)
        await _snapshot(page, "screen-hall-1366")

        # the QR code is the H5 address of this contest; that address opens the contest
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/api/v1/contests/demo/join-qr.svg", params={"origin": base}) as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("image/svg+xml")
                assert r.headers["X-Join-Url"] == f"{base}/?contest=demo"
            async with s.get(f"{base}/api/v1/contests/demo/join-qr.svg", params={"origin": "javascript:x"}) as r:
                assert r.status == 400
        phone = await ctx.new_page()
        await phone.set_viewport_size({"width": 375, "height": 812})
        await phone.goto(f"{base}/")
        await phone.evaluate("(a) => localStorage.setItem('quiz.auth', JSON.stringify(a))",
                             {"user_id": user["user_id"], "token": user["token"], "expires_at": user["expires_at"]})
        await phone.goto(f"{base}/?contest=demo")
        await pw.expect(phone.get_by_test_id("start")).to_be_visible(timeout=10_000)
        assert not problems, problems
    finally:
        await ctx.close()


async def test_text_as_written_on_every_page(live_server: Any, browser: Any) -> None:
    """Issue 16 item 1 on the pages: full-width punctuation and "（　）" shown exactly as written on
    the H5 list, detail and question, the big screen's headline, the admin bank and the dashboard."""
    base = live_server.url.rstrip("/")
    title, description = "全省法律知识竞赛（演示）：第二场", "演示竞赛：每次抽取 1 道题，限时 5 分钟！"
    stem, person = "宪法规定，（　）是国家的根本任务。", "李　四（Ｌｅｅ）"
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    now = int(time.time() * 1000)
    async with aiohttp.ClientSession() as s:
        bank = [{"id": "tf-page", "type": "single", "stem": stem, "options": ["甲：是", "乙（否）"], "answer": "A",
                 "category": "原样"}]
        async with s.post(f"{base}/api/v1/admin/questions/import", data=orjson.dumps(bank),
                          headers={**headers, "Content-Type": "application/json"}) as r:
            assert r.status == 200, await r.text()
        body = {"contest_id": "tf", "title": title, "description": description, "starts_at": now - 60_000,
                "ends_at": now + 3_600_000, "paper": {"draw": [{"category": "原样", "count": 1}],
                                                      "shuffle_options": False}}
        async with s.post(f"{base}/api/v1/admin/contests", json=body, headers=headers) as r:
            assert r.status == 201, await r.text()
        async with s.post(f"{base}/api/v1/admin/contests/tf/publish", headers=headers) as r:
            assert r.status == 200
        async with s.post(f"{base}/api/v1/auth/register",
                          json={"name": person, "phone": "13300000001", "org_id": "360302002001"}) as r:
            user = await r.json()
    problems: list[str] = []
    ctx = await browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    page = await ctx.new_page()
    _watch(page, problems, base)
    try:
        await page.goto(f"{base}/")
        await page.evaluate("(a) => localStorage.setItem('quiz.auth', JSON.stringify(a))",
                            {"user_id": user["user_id"], "token": user["token"], "expires_at": user["expires_at"]})
        await page.goto(f"{base}/")
        item = page.locator('[data-testid=contest-item][data-contest-id="tf"] .ci-title')
        await pw.expect(item).to_have_text(title, timeout=10_000)
        await item.click()
        await pw.expect(page.get_by_text(description)).to_be_visible(timeout=10_000)
        await page.get_by_test_id("start").click()
        await pw.expect(page.get_by_test_id("question-stem")).to_have_text(stem, timeout=10_000)
        await pw.expect(page.get_by_test_id("option").first).to_contain_text("甲：是")
        await page.get_by_test_id("option").first.click()
        await page.get_by_test_id("submit-answer").click()
        await page.get_by_test_id("finish").click(timeout=10_000)
        await pw.expect(page.get_by_test_id("score")).to_be_visible(timeout=10_000)

        await page.set_viewport_size({"width": 1920, "height": 1080})
        await page.goto(f"{base}/screen/tf")
        await pw.expect(page.get_by_test_id("contest-title")).to_have_text(title, timeout=10_000)
        await page.goto(f"{base}/admin/?token={live_server.admin_token}#bank")
        await page.locator("#bank-q").fill("根本任务")
        await pw.expect(page.locator('[data-testid=bank-row][data-qid="tf-page"] .stem-cell')).to_contain_text(
            stem, timeout=10_000)
        await page.goto(f"{base}/dashboard/?token={live_server.organizer_token}&contest=tf")
        await pw.expect(page.get_by_test_id("leaderboard")).to_contain_text(person, timeout=15_000)
        assert not problems, problems
    finally:
        await ctx.close()


async def test_lottery_tab_commits_draws_and_publishes(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    async with aiohttp.ClientSession() as s:
        for i in range(4):
            await _api_player(s, base, "360302002001", f"抽奖人{i}", f"1320000{i:04d}", 2 + i)
    problems: list[str] = []
    ctx, page = await _admin_page(browser, base, live_server.admin_token, problems, tab="lottery")
    try:
        await page.get_by_test_id("lot-contest").select_option("demo")
        # the form's errors in Chinese, a reversed date range naming both dates
        await page.get_by_test_id("lot-name").fill("幸运奖")
        await page.get_by_test_id("lot-from").fill("2030-02-01")
        await page.get_by_test_id("lot-to").fill("2030-01-01")
        await page.get_by_test_id("lot-create").click()
        await pw.expect(page.get_by_test_id("toast").filter(has_text="截止日期必须晚于起始日期").first).to_be_visible(
            timeout=10_000)
        await page.get_by_test_id("lot-from").fill("")
        await page.get_by_test_id("lot-to").fill("")
        await page.get_by_test_id("lot-winners").fill("2")
        await page.get_by_test_id("lot-create").click()
        lottery = page.get_by_test_id("lottery")
        await pw.expect(lottery).to_have_count(1, timeout=10_000)
        commitment = (await lottery.get_by_test_id("lot-commitment").inner_text()).strip()
        assert len(commitment) == 64
        await pw.expect(lottery.get_by_test_id("lot-seed")).to_have_count(0)

        async def flushed() -> bool:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{base}/api/v1/admin/contests/demo/export",
                                 headers={"Authorization": f"Bearer {live_server.admin_token}"}) as r:
                    return len((await r.read()).decode("utf-8-sig").strip().splitlines()) == 5

        await until(flushed, within=10, what="the results in the database")
        await lottery.get_by_test_id("lot-draw").click()
        seed = lottery.get_by_test_id("lot-seed")
        await pw.expect(seed).to_be_visible(timeout=10_000)
        assert hashlib.sha256((await seed.inner_text()).strip().encode()).hexdigest() == commitment
        await pw.expect(lottery.get_by_test_id("lot-eligible")).to_contain_text("符合条件 4 人")
        await pw.expect(lottery.locator("[data-testid=lot-winners] li")).to_have_count(2)
        await pw.expect(lottery.get_by_test_id("lot-winners")).to_contain_text("抽奖人")  # full names for the admin
        await _snapshot(page, "organizer-lottery")
        assert not problems, problems
    finally:
        await ctx.close()
