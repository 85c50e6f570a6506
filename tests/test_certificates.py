"""Verifiable certificates (issue 15 item 3): a PNG with real Chinese, a serial that verifies, a
voided attempt's certificate that does not."""

from __future__ import annotations

import io

from aiohttp.test_utils import TestClient
from PIL import Image, ImageChops

from contest.certificate_image import CertificateText, render_certificate
from tests.fixtures.app import admin_headers
from tests.fixtures.play import choice_for, register, seed_custom, start
from tests.fixtures.waiting import until


def _ink(png: bytes, box: tuple[int, int, int, int]) -> int:
    """How many pixels of ``box`` differ from the certificate's paper colour."""
    image = Image.open(io.BytesIO(png)).convert("RGB").crop(box)
    blank = Image.new("RGB", image.size, image.getpixel((0, 0)))
    mask = ImageChops.difference(image, blank).convert("L").point(lambda v: 255 if v > 40 else 0)
    return mask.histogram()[255]


def test_the_png_draws_chinese_glyphs() -> None:
    base = CertificateText("荣誉证书", "", "", "", 90, None, "", "AAAA", "http://x/verify/AAAA")
    blank = render_certificate(base)
    named = render_certificate(CertificateText("荣誉证书", "欧阳明月", "荷塘村", "学习竞赛", 90, 1, "2026年12月3日",
                                               "AAAA", "http://x/verify/AAAA"))
    assert Image.open(io.BytesIO(named)).size == (900, 1260)
    # the name's line (y ~ 250-320) is empty on the blank render and inked with glyphs on the named one;
    # a font without CJK glyphs would draw nothing (or identical boxes) there
    assert _ink(blank, (100, 250, 800, 320)) == 0
    assert _ink(named, (100, 250, 800, 320)) > 600


async def test_certificate_issue_verify_and_void(client: TestClient) -> None:
    cid = await seed_custom(client, certificate={"min_score": 30, "title": "荣誉证书"}, feedback="end")
    p, low = await register(client, name="欧阳明月"), await register(client)
    serials = []
    for player, right in ((p, 6), (low, 1)):
        status, attempt = await start(client, player, cid)
        aid = attempt["attempt_id"]
        url = f"/api/v1/attempts/{aid}/certificate.png"
        assert (await client.get(url, headers=player.headers)).status == 409  # not finished
        answers = [{"index": q["index"], "choice": choice_for(q, q["index"] < right)} for q in attempt["questions"]]
        resp = await client.post(f"/api/v1/attempts/{aid}/submit", json={"answers": answers}, headers=player.headers)
        assert resp.status == 200
        resp = await client.get(url, headers=player.headers)
        if player is low:
            err = await resp.json()
            assert resp.status == 403 and err["error"]["code"] == "not_qualified"
            continue
        png = await resp.read()
        assert resp.status == 200 and resp.content_type == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
        assert Image.open(io.BytesIO(png)).size == (900, 1260) and _ink(png, (100, 250, 800, 320)) > 600
        serial = resp.headers["X-Certificate-Serial"]
        assert len(serial) == 20 and serial.isalnum()
        again = await client.get(url, headers=player.headers)
        assert again.headers["X-Certificate-Serial"] == serial  # stored: the same certificate every time
        assert (await client.get(url, headers=low.headers)).status == 404  # not the owner
        serials.append((aid, serial))
    aid, serial = serials[0]
    cert = await (await client.get(f"/api/v1/certificates/{serial}")).json()
    assert cert["valid"] is True and cert["masked_name"] == "欧*" and cert["score"] == 60 and cert["rank"] == 1
    assert cert["contest"] == "测试竞赛"
    page = await client.get(f"/verify/{serial}")
    text = await page.text()
    assert page.status == 200 and "证书有效" in text and "欧*" in text and "欧阳明月" not in text
    assert (await client.get("/api/v1/certificates/AAAAAAAAAAAAAAAAAAAA")).status == 404
    assert (await client.get("/verify/nope")).status == 404

    resp = await client.post(f"/api/v1/admin/contests/{cid}/attempts/{aid}/review", headers=admin_headers(),
                             json={"action": "void", "reason": "答题过快，判定无效"})
    assert resp.status == 200, await resp.text()

    async def voided() -> dict | None:
        body = await (await client.get(f"/api/v1/certificates/{serial}")).json()
        return body if body["valid"] is False else None

    cert = await until(voided, what="the void reaching the database")
    assert cert["reason"] == "答题过快，判定无效"
    assert "证书无效" in await (await client.get(f"/verify/{serial}")).text()
    resp = await client.get(f"/api/v1/attempts/{aid}/certificate.png", headers=p.headers)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "attempt_voided"
