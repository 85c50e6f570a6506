"""A province-sized org picker: 130,000 generated orgs imported through the admin API, then the
registration page in headless Chromium picks a village (through the cascade, and through the
search box) and registers, within a transfer budget measured from the browser's own network log.

The big tree is imported once for the module, into a server and a Valkey of the module's own (the
session's Valkey is flushed by other fixtures between tests).
"""

from __future__ import annotations

import io
import random
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from contest.appkeys import CATALOG
from contest.embedded_redis import EmbeddedValkey
from contest.orggen import generate_orgs, orgs_csv
from contest.orgsearch import initials
from contest.settings import Settings
from contest.web.app import create_app
from tests.fixtures.app import SAMPLE, admin_headers, make_settings, seed_contest
from tests.orgpick import pick_by_cascade, pick_by_search

PAGE_BUDGET = 150_000  # bytes on the wire, headers included, from opening the page to registered
IMPORT_BUDGET_S = 30.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@dataclass
class Province:
    client: TestClient
    url: str
    rows: list[dict[str, Any]]
    import_s: float
    settings: Settings

    def path_ids(self, org_id: str) -> list[str]:
        return list(self.client.server.app[CATALOG].orgs.path(org_id))


async def _import_orgs(client: TestClient, data: bytes) -> tuple[float, dict[str, Any]]:
    """POST the file as the admin page does (multipart field ``file``); (seconds, answer)."""
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename="orgs.csv", content_type="text/csv")
    started = time.perf_counter()
    resp = await client.post("/api/v1/admin/orgs/import", data=form, headers=admin_headers())
    body = await resp.json()
    elapsed = time.perf_counter() - started
    assert resp.status == 200, body
    return elapsed, body


@pytest.fixture(scope="module")
async def province(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Province]:
    valkey = EmbeddedValkey(tmp_path_factory.mktemp("picker-valkey"), appendonly=False).start()
    try:
        settings = make_settings(valkey.url, tmp_path_factory.mktemp("picker-data"))
        client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
        await client.start_server()
        try:
            rows = generate_orgs()
            import_s, body = await _import_orgs(client, orgs_csv(rows))
            assert body["imported"] == len(rows) == body["total"] == 130_000, body
            h = admin_headers()
            resp = await client.post("/api/v1/admin/questions/import", data=(SAMPLE / "questions.json").read_bytes(),
                                     headers={**h, "Content-Type": "application/json"})
            assert resp.status == 200, await resp.text()
            contest = orjson.loads((SAMPLE / "contest.json").read_bytes())
            now = int(time.time() * 1000)
            contest.update(starts_at=now - 60_000, ends_at=now + 3_600_000)
            resp = await client.post("/api/v1/admin/contests", json=contest, headers=h)
            assert resp.status == 201, await resp.text()
            resp = await client.post("/api/v1/admin/contests/demo/publish", headers=h)
            assert resp.status == 200, await resp.text()
            yield Province(client, str(client.make_url("/")).rstrip("/"), rows, import_s, settings)
        finally:
            await client.close()
    finally:
        valkey.stop()


def _village(province: Province, seed: int) -> dict[str, Any]:
    villages = [r for r in province.rows if r["level"] == 5]
    return random.Random(seed).choice(villages)


async def _get(client: TestClient, **query: str) -> tuple[int, dict[str, Any], int]:
    resp = await client.get("/api/v1/orgs", params=query, headers={"Accept-Encoding": "identity"})
    raw = await resp.read()
    return resp.status, orjson.loads(raw), len(raw)


# ------------------------------------------------------------------------------------- API
async def test_import_of_130000_orgs_is_under_30_s(province: Province) -> None:
    print(f"import of 130,000 orgs through POST /api/v1/admin/orgs/import: {province.import_s:.2f} s")
    assert province.import_s < IMPORT_BUDGET_S


async def test_cascade_one_level_at_a_time(province: Province) -> None:
    client = province.client
    status, body, size = await _get(client)
    assert status == 200 and [o["name"] for o in body["orgs"]] == ["西川省"]
    org = body["orgs"][0]
    sizes = []
    for level in range(2, 6):
        assert org["has_children"] is True
        status, body, size = await _get(client, parent_id=org["org_id"])
        assert status == 200 and body["orgs"], body
        assert {o["level"] for o in body["orgs"]} == {level}
        sizes.append(size)
        org = body["orgs"][-1]
    assert org["has_children"] is False
    assert max(sizes) < 20_000, sizes  # a town's villages: ~85 of them, a few KB
    status, body, _ = await _get(client, parent_id="no-such-org")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_search_by_name_and_initials(province: Province) -> None:
    client = province.client
    village = _village(province, 1)
    path = province.path_ids(village["org_id"])
    status, body, _ = await _get(client, q=village["name"])
    assert status == 200 and 1 <= len(body["orgs"]) <= 20
    hit = next(o for o in body["orgs"] if o["org_id"] == village["org_id"])
    assert hit["path_ids"] == path and hit["path"][-1] == village["name"] and hit["has_children"] is False
    assert all(village["name"] in o["name"] for o in body["orgs"])
    # initials, narrowed to the village's town
    spelled = initials(village["name"])[0]
    status, body, _ = await _get(client, q=spelled.upper(), parent_id=path[3])
    assert status == 200 and village["org_id"] in [o["org_id"] for o in body["orgs"]]
    assert all(o["path_ids"][3] == path[3] for o in body["orgs"])
    # never more than 20, whatever matches
    for q in ("村", "c", "x"):
        status, body, _ = await _get(client, q=q)
        assert status == 200 and len(body["orgs"]) == 20
    status, body, _ = await _get(client, q="村", limit="5")
    assert len(body["orgs"]) == 5
    status, body, _ = await _get(client, q="")
    assert status == 200 and body == {"orgs": []}
    for bad in ({"q": "x" * 41}, {"q": "村", "limit": "21"}, {"q": "村", "limit": "0"}):
        status, body, _ = await _get(client, **bad)
        assert status == 400 and body["error"]["code"] == "validation_failed", body


async def test_search_latency(province: Province) -> None:
    """A keystroke's search, in the server (the index) and over HTTP."""
    tree = province.client.server.app[CATALOG].orgs
    village = _village(province, 2)
    queries = [village["name"], village["name"][:2], initials(village["name"])[0], "村", "zzzzq", "没有这个"]
    in_process = []
    for q in queries * 10:
        started = time.perf_counter()
        tree.search(q)
        in_process.append((time.perf_counter() - started) * 1000)
    over_http = []
    for q in queries * 3:
        started = time.perf_counter()
        status, _, _ = await _get(province.client, q=q)
        over_http.append((time.perf_counter() - started) * 1000)
        assert status == 200
    print(f"search on 130,000 orgs: median {statistics.median(in_process):.2f} ms, max {max(in_process):.2f} ms "
          f"in process; over HTTP median {statistics.median(over_http):.2f} ms, max {max(over_http):.2f} ms")
    assert statistics.median(in_process) < 5 and max(in_process) < 50
    assert statistics.median(over_http) < 50


async def test_all_still_answers_old_clients(client: TestClient) -> None:
    await seed_contest(client, contest_id="demo")
    resp = await client.get("/api/v1/orgs", params={"all": "1"})
    assert resp.status == 200
    orgs = (await resp.json())["orgs"]
    village = next(o for o in orgs if o["org_id"] == "360302002001")
    assert village["path"][0] == "江南省" and village["path"][-1] == village["name"]
    assert village["has_children"] is False
    resp = await client.get("/api/v1/orgs", params={"q": "htc"})
    assert "360302002001" in [o["org_id"] for o in (await resp.json())["orgs"]]


async def test_openapi_documents_the_picker(client: TestClient) -> None:
    resp = await client.get("/api/openapi.json")
    op = (await resp.json())["paths"]["/api/v1/orgs"]["get"]
    params = {p["name"]: p["schema"]["type"] for p in op["parameters"]}
    assert params == {"parent_id": "string", "q": "string", "limit": "integer", "all": "string"}
    item = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["orgs"]["items"]
    assert {"org_id", "name", "level", "has_children", "path", "path_ids"} <= set(item["properties"])
    assert {"400", "404"} <= set(op["responses"])


# ------------------------------------------------------------------------------------ page
try:
    from playwright import async_api as pw
except ImportError:  # pragma: no cover - the test extra installs it
    pw = None
needs_chromium = pytest.mark.usefixtures("chromium_path")  # skipped where missing, failed under CI=1


class Wire:
    """Bytes received by the page, as Chromium's network log counts them (encodedDataLength:
    headers plus the body as sent, compressed or not), per URL."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.received: list[tuple[str, int]] = []
        self.decoded = 0  # the bodies after decompression, for the printout

    def _data(self, event: dict[str, Any]) -> None:
        self.decoded += int(event["dataLength"])

    async def attach(self, ctx: Any, page: Any) -> None:
        cdp = await ctx.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", lambda e: self.urls.__setitem__(e["requestId"], e["request"]["url"]))
        cdp.on("Network.loadingFinished",
               lambda e: self.received.append((self.urls.get(e["requestId"], "?"), int(e["encodedDataLength"]))))
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.loadingFailed",
               lambda e: self.received.append((self.urls.get(e["requestId"], "?") + " (failed)", 0)))
        await cdp.send("Network.enable")

    @property
    def total(self) -> int:
        return sum(size for _, size in self.received)

    def report(self) -> str:
        return ("\n".join(f"{size:>8}  {url}" for url, size in self.received)
                + f"\n{self.total:>8}  total on the wire ({self.decoded} bytes of bodies once decoded)")


@pytest.fixture
async def phone(province: Province, chromium_path: str) -> AsyncIterator[tuple[Any, Wire, list[str]]]:
    async with pw.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            ctx = await browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page = await ctx.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))

            async def on_dialog(dialog: Any) -> None:  # none is expected: a village has no units below
                problems.append(f"dialog: {dialog.message}")
                await dialog.dismiss()

            page.on("dialog", on_dialog)
            wire = Wire()
            await wire.attach(ctx, page)
            yield page, wire, problems
        finally:
            await browser.close()


async def _register(page: Any, wire: Wire, province: Province, org_id: str, shot: str) -> None:
    await page.get_by_test_id("register-org").screenshot(path=str(ARTIFACTS / f"{shot}.png"))
    await page.get_by_test_id("register-submit").click()
    await pw.expect(page.get_by_test_id("contest-item").first).to_be_visible(timeout=10_000)
    auth = await page.evaluate("JSON.parse(localStorage.getItem('quiz.auth'))")
    resp = await province.client.get("/api/v1/me", headers={"Authorization": f"Bearer {auth['token']}"})
    assert (await resp.json())["org_id"] == org_id
    await page.wait_for_load_state("networkidle")
    print(f"{shot}: bytes received until registered\n{wire.report()}")
    assert not [url for url, _ in wire.received if "all=1" in url]
    assert wire.total <= PAGE_BUDGET, wire.report()


async def _open(page: Any, province: Province) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.goto(province.url + "/")
    await page.get_by_test_id("register-name").fill("测试用户")
    await page.get_by_test_id("register-phone").fill(f"139{random.randint(0, 99_999_999):08d}")


@pytest.mark.browser
@needs_chromium
async def test_page_picks_a_village_level_by_level_within_budget(
    province: Province, phone: tuple[Any, Wire, list[str]]
) -> None:
    page, wire, problems = phone
    village = _village(province, 3)
    await _open(page, province)
    await pick_by_cascade(page, province.path_ids(village["org_id"]))
    path_text = await page.get_by_test_id("org-path").inner_text()
    assert village["name"] in path_text and "西川省" in path_text
    await _register(page, wire, province, village["org_id"], "h5-org-cascade")
    assert not problems, problems


@pytest.mark.browser
@needs_chromium
async def test_page_finds_a_village_by_search_within_budget(
    province: Province, phone: tuple[Any, Wire, list[str]]
) -> None:
    page, wire, problems = phone
    village = _village(province, 4)
    await _open(page, province)
    # pinyin initials show results too (at most 20) ...
    await page.get_by_test_id("org-search").fill(initials(village["name"])[0])
    await pw.expect(page.get_by_test_id("org-result").first).to_be_visible(timeout=10_000)
    assert 1 <= await page.get_by_test_id("org-result").count() <= 20
    await page.screenshot(path=str(ARTIFACTS / "h5-org-results.png"), full_page=True)
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal overflow (scrollWidth, innerWidth) = {width}"
    # ... and the name finds the village itself; the cascade then shows where it sits
    await pick_by_search(page, village["name"], village["org_id"])
    path = province.path_ids(village["org_id"])
    for level, org_id in enumerate(path, start=1):
        select = page.locator(f'[data-testid=org-level][data-level="{level}"]')
        await pw.expect(select).to_have_value(org_id, timeout=10_000)
    await _register(page, wire, province, village["org_id"], "h5-org-search")
    assert not problems, problems

