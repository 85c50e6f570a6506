"""What phones and screens download, measured in headless Chromium over the wire (Chrome DevTools
Protocol: encoded bytes, protocol, cache hits), on the embedded server and behind deploy/nginx over
HTTPS and HTTP/2.

- the dashboard's first load transfers at most 450 KB; a second load takes every content-hashed
  asset from the browser cache without asking the server;
- the H5 flow, the dashboard and its live feed (SSE) work through nginx with TLS and HTTP/2;
- the big screen of an unknown contest says so instead of reconnecting forever.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contest.embedded_redis import free_port
from tests.fixtures.binaries import playwright
from tests.fixtures.waiting import until
from tests.nginx_edge import edge_conf, start_nginx
from tests.test_pages import CHROMIUM_ARGS, _answer_all, _phone, _start

pw: Any = playwright()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("chromium_path"),
]

DASHBOARD_BUDGET = 450_000
HASHED = re.compile(r"/static/.+\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?$")
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    async with pw.async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@dataclass
class Fetch:
    url: str
    protocol: str = ""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0
    data_bytes: int = 0
    total: int | None = None      # loadingFinished: everything received, headers included
    cached: bool = False

    @property
    def wire_bytes(self) -> int:
        # an open stream (SSE) never finishes: count what it has received so far
        return self.total if self.total is not None else self.header_bytes + self.data_bytes


class Wire:
    """Every request of one page as the network saw it (CDP Network domain)."""

    def __init__(self) -> None:
        self.fetches: dict[str, Fetch] = {}

    @classmethod
    async def attach(cls, page: Any) -> Wire:
        wire = cls()
        cdp = await page.context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", wire._sent)
        cdp.on("Network.responseReceived", wire._response)
        cdp.on("Network.dataReceived", wire._data)
        cdp.on("Network.loadingFinished", wire._finished)
        cdp.on("Network.requestServedFromCache", wire._from_cache)
        await cdp.send("Network.enable")
        return wire

    def _sent(self, e: dict[str, Any]) -> None:
        if not e["request"]["url"].startswith("data:"):
            self.fetches[e["requestId"]] = Fetch(e["request"]["url"])

    def _response(self, e: dict[str, Any]) -> None:
        f = self.fetches.get(e["requestId"])
        if f is None:
            return
        r = e["response"]
        f.protocol, f.status = r.get("protocol", ""), r["status"]
        f.headers = {k.lower(): v for k, v in r.get("headers", {}).items()}
        f.header_bytes = int(r.get("encodedDataLength", 0))
        f.cached = f.cached or bool(r.get("fromDiskCache") or r.get("fromPrefetchCache"))

    def _data(self, e: dict[str, Any]) -> None:
        if (f := self.fetches.get(e["requestId"])) is not None:
            f.data_bytes += int(e.get("encodedDataLength", 0))

    def _finished(self, e: dict[str, Any]) -> None:
        if (f := self.fetches.get(e["requestId"])) is not None:
            f.total = int(e["encodedDataLength"])

    def _from_cache(self, e: dict[str, Any]) -> None:
        if (f := self.fetches.get(e["requestId"])) is not None:
            f.cached = True

    def total(self) -> int:
        return sum(f.wire_bytes for f in self.fetches.values())

    def report(self) -> str:
        rows = sorted(self.fetches.values(), key=lambda f: -f.wire_bytes)
        return "\n".join(f"{f.wire_bytes:>9} {f.protocol:<8} {f.headers.get('content-encoding', '-'):<5} "
                         f"{'cache' if f.cached else '':<5} {f.url}" for f in rows)


async def _dashboard_ready(page: Any) -> None:
    """Loaded as an organizer sees it: figures, org table, both charts drawn, live feed connected."""
    await pw.expect(page.get_by_test_id("stat-participants")).to_be_visible(timeout=15_000)
    await pw.expect(page.get_by_test_id("org-row").first).to_be_visible(timeout=10_000)
    await pw.expect(page.locator("#chart-answers canvas")).to_be_attached(timeout=10_000)
    await pw.expect(page.locator("#chart-finished canvas")).to_be_attached(timeout=10_000)
    await pw.expect(page.locator("#live-dot.on")).to_be_attached(timeout=10_000)


async def _dashboard_first_load(ctx: Any, url: str) -> tuple[Any, Wire]:
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    wire = await Wire.attach(page)
    await page.goto(url)
    await _dashboard_ready(page)
    assert not errors, errors
    total = wire.total()
    print(f"dashboard first load: {total} bytes on the wire\n{wire.report()}")
    assert total <= DASHBOARD_BUDGET, f"dashboard first load {total} B > {DASHBOARD_BUDGET} B\n{wire.report()}"
    echarts = [f for f in wire.fetches.values() if "echarts" in f.url]
    assert echarts and echarts[0].headers.get("content-encoding") in ("br", "gzip"), wire.report()
    return page, wire


async def test_dashboard_weight_and_cache(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    url = f"{base}/dashboard/?token={live_server.organizer_token}&contest=demo"
    ctx = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        first, wire = await _dashboard_first_load(ctx, url)
        hashed = {f.url for f in wire.fetches.values() if HASHED.search(f.url.split("?")[0])}
        assert len(hashed) >= 7, wire.report()  # echarts, 2 css, dashboard.js and the 4 modules it imports
        for f in wire.fetches.values():
            if f.url in hashed:
                assert f.headers["cache-control"] == "public, max-age=31536000, immutable", f
        await first.close()

        # the second visit: hashed assets straight from the cache, only the page is revalidated
        again = await ctx.new_page()
        wire2 = await Wire.attach(again)
        await again.goto(url)
        await _dashboard_ready(again)
        seen = {f.url: f for f in wire2.fetches.values() if f.url in hashed}
        assert seen.keys() == hashed, wire2.report()
        for f in seen.values():
            assert f.cached, f"{f.url} went to the server on the second load\n{wire2.report()}"
        static_bytes = sum(f.wire_bytes for f in seen.values() if not f.cached)
        assert static_bytes == 0
        print(f"dashboard second load: {wire2.total()} bytes on the wire\n{wire2.report()}")
        assert wire2.total() < 40_000, wire2.report()
    finally:
        await ctx.close()


async def test_screen_of_an_unknown_contest_says_so(live_server: Any, browser: Any) -> None:
    base = live_server.url.rstrip("/")
    ctx = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        feeds: list[str] = []
        page.on("request", lambda r: feeds.append(r.url) if r.url.endswith("/live") else None)
        await page.clock.install()
        await page.goto(f"{base}/screen/no-such-contest")
        notice = page.get_by_test_id("contest-missing")
        await pw.expect(notice).to_contain_text("竞赛不存在", timeout=10_000)
        await pw.expect(notice).to_contain_text("no-such-contest")
        await pw.expect(page.locator("#s-title")).to_have_text("竞赛不存在")
        opened = len(feeds)
        # two minutes later (fake clock): no reconnect attempts, no "reconnecting"
        await page.clock.run_for(120_000)
        assert len(feeds) == opened <= 2, feeds
        await pw.expect(page.locator("#live-dot.off")).to_have_count(0)
        await pw.expect(notice).to_be_visible()
        # the language toggle still works on the notice
        await page.get_by_test_id("lang-toggle").click()
        await pw.expect(notice).to_contain_text("Contest not found")
        assert not errors, errors
    finally:
        await ctx.close()


@pytest.mark.usefixtures("nginx_path")
async def test_h5_dashboard_and_live_feed_over_https_http2(live_server: Any, browser: Any, tmp_path: Path) -> None:
    """deploy/nginx/nginx.conf with a throwaway certificate in front of the server: the H5 play-through,
    the dashboard within its byte budget and its SSE feed, all over TLS and HTTP/2."""
    upstream = live_server.url.rstrip("/").removeprefix("http://")
    http_port, https_port = free_port(), free_port()
    conf = edge_conf(tmp_path, upstream, http_port, https_port)
    base = f"https://127.0.0.1:{https_port}"
    proc = await start_nginx(tmp_path, conf, f"{base}/healthz")
    ctx = await browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN", ignore_https_errors=True)
    try:
        # registration goes through the API (the picker UI has tests of its own); the rest is the page
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
            async with session.post(f"{base}/api/v1/auth/register",
                                    json={"name": "加密", "phone": _phone(), "org_id": "360302002001"}) as resp:
                assert resp.status == 201, await resp.text()
                auth = await resp.json()
            async with session.get(f"http://127.0.0.1:{http_port}/", allow_redirects=False) as resp:
                assert resp.status == 301 and resp.headers["Location"].startswith("https://")
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        wire = await Wire.attach(page)
        await page.goto(base + "/")
        await page.evaluate("(a) => localStorage.setItem('quiz.auth', JSON.stringify(a))",
                            {k: auth[k] for k in ("user_id", "token", "expires_at")})
        await page.reload()
        await _start(page)
        assert await _answer_all(page) == 10
        await page.get_by_test_id("finish").click()
        await pw.expect(page.get_by_test_id("score")).to_be_visible(timeout=10_000)
        await pw.expect(page.get_by_test_id("rank")).to_have_text("1")
        assert not errors, errors
        fetched = list(wire.fetches.values())
        assert fetched and all(f.protocol == "h2" for f in fetched if f.status), wire.report()
        document = next(f for f in fetched if f.url == base + "/")
        assert document.headers["strict-transport-security"].startswith("max-age=")
        # brotli once a background thread has compressed the file (gzip until then, on a loaded machine)
        assert all(f.headers.get("content-encoding") in ("br", "gzip") for f in fetched
                   if HASHED.search(f.url) and f.url.endswith((".js", ".css"))), wire.report()
        answers = [f for f in fetched if f.url.endswith("/answers")]
        assert len(answers) == 10 and all(f.status == 200 and "content-encoding" not in f.headers for f in answers)

        # the dashboard over HTTPS: within budget, its live feed an HTTP/2 stream through nginx
        dash, dash_wire = await _dashboard_first_load(
            ctx, f"{base}/dashboard/?token={live_server.organizer_token}&contest=demo")
        def live_feeds() -> list[Any]:
            return [f for f in dash_wire.fetches.values() if f.url.endswith("/live") and f.data_bytes > 0]

        # the feed's first event comes with the next tick of the live hub: wait for it, not for "long enough"
        live = await until(live_feeds, within=15, what=f"the live feed's first event\n{dash_wire.report()}")
        assert live[0].protocol == "h2", dash_wire.report()
        assert "content-encoding" not in live[0].headers
        await pw.expect(dash.locator(f'[data-testid=leaderboard-row][data-user-id="{auth["user_id"]}"]')
                        ).to_be_visible(timeout=10_000)
    finally:
        await ctx.close()
        proc.terminate()
        await proc.wait()
