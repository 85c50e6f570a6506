"""The H5 pages of issue 15 in Chromium: the remaining-attempts text, a challenge run to its first
wrong answer, 错题回顾, and the certificate image (long-press to save) with its verify page."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fixtures.app import SAMPLE
from tests.fixtures.binaries import playwright
from tests.test_pages import CHROMIUM_ARGS, _phone_page, _register, _snapshot

pw: Any = playwright()
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium_path")]

ANSWERS = {q["stem"]: q["answer"] for q in orjson.loads((SAMPLE / "questions.json").read_bytes())}


@pytest.fixture
async def chromium(chromium_path: str) -> AsyncIterator[Any]:
    async with pw.async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def _challenge_contest(base: str, admin_token: str, **overrides: Any) -> None:
    now = int(time.time() * 1000)
    body = {"contest_id": "ch", "title": "知识挑战赛", "starts_at": now - 60_000, "ends_at": now + 3_600_000,
            "time_limit_s": 300, "attempts_per_day": 3, "feedback": "immediate", "mode": "challenge",
            "max_questions": 5, "certificate": {"min_score": 1, "title": "荣誉证书"},
            "paper": {"draw": [{"category": "历史", "difficulty": None, "count": 5}],
                      "shuffle_questions": True, "shuffle_options": False}, **overrides}
    cid = body["contest_id"]
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/v1/admin/contests", json=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
        async with session.post(f"{base}/api/v1/admin/contests/{cid}/publish", headers=headers) as resp:
            assert resp.status == 200, await resp.text()


async def _answer(page: Any, right: bool) -> str:
    """Answer the question on screen, right or wrong (the sample bank's keys, options unshuffled)."""
    stem = page.get_by_test_id("question-stem")
    await pw.expect(page.locator("[data-testid=option]:not([disabled])").first).to_be_visible(timeout=10_000)
    index = await stem.get_attribute("data-index")
    key = ANSWERS[(await stem.inner_text()).strip()]
    options = [await o.get_attribute("data-key") for o in await page.get_by_test_id("option").all()]
    pick = list(key) if right else [next(k for k in options if k not in key)]
    for letter in pick:
        await page.locator(f'[data-testid=option][data-key="{letter}"]').click()
    await page.get_by_test_id("submit-answer").click()
    return str(index)


async def test_challenge_recap_certificate_and_attempts_left(live_server: Any, chromium: Any) -> None:
    base = live_server.url.rstrip("/")
    await _challenge_contest(base, live_server.admin_token)
    problems: list[str] = []
    ctx, page = await _phone_page(chromium, problems, base)
    try:
        await _register(page, base)
        await page.locator('[data-testid=contest-item][data-contest-id="ch"]').click()
        left = page.get_by_test_id("attempts-left")
        await pw.expect(left).to_contain_text("今日还可答题 3 次")
        await page.get_by_test_id("start").click()
        await pw.expect(page.get_by_test_id("progress")).to_have_text("第 1 题 · 最多 5 题", timeout=10_000)
        await pw.expect(page.get_by_test_id("challenge-hint")).to_be_visible()
        assert await page.get_by_test_id("question-stem").count() == 1
        assert await _answer(page, right=True) == "0"
        # the next question arrives with the verdict of this one (one request), and is shown next
        await pw.expect(page.get_by_test_id("question-stem")).to_have_attribute("data-index", "1", timeout=10_000)
        await pw.expect(page.get_by_test_id("progress")).to_have_text("第 2 题 · 最多 5 题")
        await _snapshot(page, "h5-challenge-question")
        assert await _answer(page, right=False) == "1"
        await pw.expect(page.get_by_test_id("feedback")).to_be_visible()
        score = page.get_by_test_id("score")
        await pw.expect(score).to_be_visible(timeout=10_000)
        assert int(await score.inner_text()) > 0
        await pw.expect(page.get_by_test_id("rank")).to_have_text("1")

        # the certificate: an <img> the browser decoded (long-press saves it), and its serial verifies
        await page.get_by_test_id("certificate-get").click()
        img = page.get_by_test_id("certificate-img")
        await pw.expect(img).to_be_visible(timeout=15_000)
        size = await img.evaluate("i => [i.naturalWidth, i.naturalHeight, i.src.slice(0, 22)]")
        assert size == [900, 1260, "data:image/png;base64,"]
        await _snapshot(page, "h5-certificate")
        verify_href = await page.get_by_test_id("certificate-verify").get_attribute("href")
        assert verify_href and verify_href.startswith("/verify/")

        # 错题回顾: the wrong answer first, with the right answer and the explanation
        await page.get_by_test_id("recap-link").click()
        items = page.get_by_test_id("recap-item")
        await pw.expect(items).to_have_count(2, timeout=10_000)
        assert await items.nth(0).get_attribute("data-correct") == "0"
        assert await items.nth(1).get_attribute("data-correct") == "1"
        await pw.expect(items.nth(0)).to_contain_text("正确答案")
        await pw.expect(page.get_by_test_id("recap-explanation").first).not_to_be_empty()
        await _snapshot(page, "h5-recap")

        # back on the contest page: one attempt fewer, and the best score
        await page.goto(base + "/")
        await page.locator('[data-testid=contest-item][data-contest-id="ch"]').click()
        await pw.expect(left).to_contain_text("今日还可答题 2 次")
        await pw.expect(left).to_contain_text("最好成绩")

        await page.goto(base + verify_href)
        await pw.expect(page.get_by_test_id("verify-status")).to_have_text("证书有效 · Valid")
        await _snapshot(page, "verify-page")
    finally:
        await ctx.close()
    assert not problems, problems



async def test_a_challenge_question_running_out_of_time_ends_the_run(live_server: Any, chromium: Any) -> None:
    base = live_server.url.rstrip("/")
    await _challenge_contest(base, live_server.admin_token, contest_id="cht", question_time_limit_s=2)
    problems: list[str] = []
    ctx, page = await _phone_page(chromium, problems, base)
    try:
        await _register(page, base)
        await page.locator('[data-testid=contest-item][data-contest-id="cht"]').click()
        await page.get_by_test_id("start").click()
        await pw.expect(page.get_by_test_id("question-countdown")).to_be_visible(timeout=10_000)
        assert await _answer(page, right=True) == "0"
        await pw.expect(page.get_by_test_id("question-stem")).to_have_attribute("data-index", "1", timeout=10_000)
        # no answer to the second question: its clock runs out and the page finishes the run
        score = page.get_by_test_id("score")
        await pw.expect(score).to_be_visible(timeout=10_000)
        assert int(await score.inner_text()) > 0
    finally:
        await ctx.close()
    assert not problems, problems
