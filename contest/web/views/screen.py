"""The big screen's QR code: the H5 URL that opens the contest, as an SVG (segno, pure Python)."""

from __future__ import annotations

import io
import re
from urllib.parse import quote

import segno
from aiohttp import web

from contest.appkeys import PLAY
from contest.web.errors import ApiError

__all__ = ["join_qr"]

# an origin only (scheme, host, port): the screen passes location.origin, so the code points at the
# address the hall's screen was opened with, even behind a proxy that rewrites Host
_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


async def join_qr(request: web.Request) -> web.Response:
    contest = request.config_dict[PLAY].contest(request.match_info["cid"])
    origin = request.query.get("origin") or f"{request.scheme}://{request.host}"
    if len(origin) > 200 or not _ORIGIN_RE.match(origin):
        raise ApiError(400, "validation_failed", "origin must be scheme://host[:port]",
                       {"fields": {"origin": "must be scheme://host[:port]"}})
    url = f"{origin}/?contest={quote(contest.contest_id)}"
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=8, border=2, xmldecl=False, svgns=True,
                                    dark="#0b1a33", light="#ffffff")
    return web.Response(body=out.getvalue(), content_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=300", "X-Join-Url": url})
