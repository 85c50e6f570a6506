"""Compression and caching on a real server: hashed static URLs, negotiated codings, JSON over 1 KB.

Raw bytes are read with ``auto_decompress=False`` so every check sees what travels on the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import brotli
import pytest
from aiohttp.test_utils import TestClient

from contest.web.compression import negotiate
from contest.web.static_assets import IMMUTABLE, Assets, assets_for
from tests.fixtures.app import seed_contest

BR = {"Accept-Encoding": "gzip, deflate, br"}
GZ = {"Accept-Encoding": "gzip, deflate"}


@pytest.fixture
async def raw(client: TestClient) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session, str(client.make_url("")).rstrip("/")


def _decode(body: bytes, coding: str | None) -> bytes:
    if coding == "br":
        return brotli.decompress(body)
    if coding == "gzip":
        return gzip.decompress(body)
    assert coding is None, coding
    return body


def test_negotiation_honours_q_zero_and_star() -> None:
    assert negotiate("gzip, deflate, br") == ("br", "gzip")
    assert negotiate("gzip;q=1.0, br;q=0") == ("gzip",)
    assert negotiate("identity") == ()
    assert negotiate("") == ()
    assert negotiate("*") == ("br", "gzip")
    assert negotiate("*, gzip;q=0") == ("br",)


async def test_pages_point_at_hashed_assets_and_revalidate(raw: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = raw
    async with session.get(f"{base}/dashboard/", headers=BR) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-cache"
        assert resp.headers["Content-Encoding"] == "br" or resp.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in resp.headers["Vary"]
        html = _decode(await resp.read(), resp.headers.get("Content-Encoding")).decode()
        etag = resp.headers["ETag"]
    refs = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert refs and all(re.search(r"\.[0-9a-f]{12}\.(js|css)$", r) for r in refs), refs
    # the modules dashboard.js imports, however deep, are asked for with the page
    preloaded = re.findall(r'<link rel="modulepreload" href="([^"]+)">', html)
    assert assets_for().by_rel["common/util.js"].url in preloaded
    assert assets_for().by_rel["common/i18n.js"].url in preloaded  # the page itself names only dashboard.js
    # an unchanged page costs a 304
    async with session.get(f"{base}/dashboard/", headers={**BR, "If-None-Match": etag}) as resp:
        assert resp.status == 304 and await resp.read() == b""
    for ref in refs:
        async with session.get(base + ref, headers=BR) as resp:
            assert resp.status == 200, ref
            assert resp.headers["Cache-Control"] == IMMUTABLE
            assert "Accept-Encoding" in resp.headers["Vary"]
            body = _decode(await resp.read(), resp.headers.get("Content-Encoding"))
            # modules import hashed modules too, so the whole graph is cached for a year
            for imported in re.findall(rb"from '(/static/[^']+)'", body):
                assert re.search(rb"\.[0-9a-f]{12}\.js$", imported), imported


async def test_codings_follow_accept_encoding(raw: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = raw
    asset = assets_for().by_rel["vendor/echarts/echarts.min.js"]
    sizes = {}
    for headers, expect in ((GZ, {"gzip"}), (BR, {"br", "gzip"}), ({"Accept-Encoding": "identity"}, {None})):
        async with session.get(base + asset.url, headers=headers) as resp:
            assert resp.status == 200
            coding = resp.headers.get("Content-Encoding")
            assert coding in expect, (headers, coding)
            wire = await resp.read()
            assert int(resp.headers["Content-Length"]) == len(wire)
            assert _decode(wire, coding) == asset.body
            sizes[coding] = len(wire)
    assert sizes["gzip"] < 350_000 < 1_000_000 < sizes[None]
    # brotli 11 is computed once in the background; gzip is served until it is ready
    for _ in range(600):  # ~3 s on an idle core; generous for a loaded CI machine
        async with session.get(base + asset.url, headers=BR) as resp:
            if resp.headers.get("Content-Encoding") == "br":
                wire = await resp.read()
                assert brotli.decompress(wire) == asset.body and len(wire) < sizes["gzip"]
                break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("brotli variant never became ready")


async def test_plain_and_stale_static_urls(raw: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = raw
    async with session.get(f"{base}/static/common/util.js", headers=GZ) as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
        assert resp.content_type == "text/javascript"
    # a page cached across a deploy asks for a hash that no longer exists: it gets today's file
    async with session.get(f"{base}/static/common/util.0123456789ab.js", headers=GZ) as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
    for missing in ("/static/nope.js", "/static/../pyproject.toml", "/static/%2e%2e/app.py"):
        async with session.get(base + missing) as resp:
            assert resp.status == 404, missing


async def test_json_over_1kb_is_compressed_small_and_streams_are_not(raw: tuple[aiohttp.ClientSession, str],
                                                                     client: TestClient) -> None:
    session, base = raw
    seeded = await seed_contest(client)
    async with session.get(f"{base}/api/openapi.json", headers=BR) as resp:
        assert resp.headers["Content-Encoding"] == "br"
        assert "Accept-Encoding" in resp.headers["Vary"]
        wire = await resp.read()
        assert len(brotli.decompress(wire)) > 5 * len(wire)
    async with session.get(f"{base}/api/openapi.json", headers=GZ) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        gzip.decompress(await resp.read())
    async with session.get(f"{base}/api/openapi.json", headers={"Accept-Encoding": "identity"}) as resp:
        assert "Content-Encoding" not in resp.headers
    async with session.get(f"{base}/healthz", headers=BR) as resp:
        assert "Content-Encoding" not in resp.headers
    # the answer path: small replies go out as they are, through the lane and through aiohttp
    user = await seeded.register()
    async with session.post(f"{base}/api/v1/contests/{seeded.contest_id}/attempts",
                            headers={**user["headers"], "Accept-Encoding": "identity"}) as resp:
        attempt = await resp.json()
    for question in attempt["questions"][:2]:
        async with session.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/answers",
                                headers={**user["headers"], **BR},
                                json={"index": question["index"], "choice": "A"}) as resp:
            assert resp.status == 200
            assert "Content-Encoding" not in resp.headers
    # the live feed is a stream: never compressed, first event at once
    async with session.get(f"{base}/api/v1/contests/{seeded.contest_id}/live", headers=BR) as resp:
        assert resp.status == 200 and "Content-Encoding" not in resp.headers
        line = await asyncio.wait_for(resp.content.readline(), 5)
        assert line.strip()


def test_a_changed_import_renames_its_importers(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "page").mkdir()
    (tmp_path / "common" / "lib.js").write_text("export const x = 1;\n")
    (tmp_path / "page" / "main.js").write_text("import { x } from '/static/common/lib.js';\nconsole.log(x);\n")
    (tmp_path / "page" / "index.html").write_text('<script type="module" src="/static/page/main.js"></script>')
    before = Assets(tmp_path)
    (tmp_path / "common" / "lib.js").write_text("export const x = 2;\n")
    after = Assets(tmp_path)
    for rel in ("common/lib.js", "page/main.js", "page/index.html"):
        assert before.by_rel[rel].digest != after.by_rel[rel].digest, rel
    assert after.by_rel["common/lib.js"].url.encode() in after.by_rel["page/main.js"].body
    assert after.by_rel["page/main.js"].url.encode() in after.by_rel["page/index.html"].body
    # a module two imports deep is preloaded by the page
    (tmp_path / "common" / "deep.js").write_text("export const y = 3;\n")
    (tmp_path / "common" / "lib.js").write_text("import { y } from '/static/common/deep.js';\nexport const x = y;\n")
    (tmp_path / "page" / "index.html").write_text(
        '<head></head><script type="module" src="/static/page/main.js"></script>')
    deep = Assets(tmp_path)
    html = deep.by_rel["page/index.html"].body.decode()
    for rel in ("common/lib.js", "common/deep.js"):
        assert f'<link rel="modulepreload" href="{deep.by_rel[rel].url}">' in html, html
    assert "modulepreload" not in html.split("</head>")[1]
