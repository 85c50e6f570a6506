"""A participant's review of an attempt, certificates, and the public verify page (issue 15)."""

from __future__ import annotations

import datetime as dt
import html
from zoneinfo import ZoneInfo

from aiohttp import web

from contest.appkeys import CATALOG, PLAY, REDIS, STORAGE
from contest.certificates import Certificates
from contest.errors import NotFound
from contest.play import parse_attempt_id
from contest.recap import Recap
from contest.web.access import require
from contest.web.jsonio import json_response

__all__ = ["attempt_review", "certificate_png", "certificate_verify", "verify_page"]


def _certificates(request: web.Request) -> Certificates:
    app = request.config_dict
    return Certificates(app[REDIS], app[STORAGE], app[CATALOG])


async def attempt_review(request: web.Request) -> web.Response:
    claims = require(request, "participant")
    aid = request.match_info["aid"]
    cid, _ = parse_attempt_id(aid)
    app = request.config_dict
    contest = app[PLAY].contest(cid, published=False)
    return json_response(await Recap(app[REDIS], app[STORAGE], app[CATALOG]).review(claims, contest, aid))


async def certificate_png(request: web.Request) -> web.Response:
    claims = require(request, "participant")
    aid = request.match_info["aid"]
    cid, _ = parse_attempt_id(aid)
    contest = request.config_dict[PLAY].contest(cid, published=False)
    certificates = _certificates(request)
    row = await certificates.issue(claims, contest, aid)
    verify_url = f"{request.url.origin()}/verify/{row['serial']}"
    png = await certificates.png(contest, row, verify_url)
    return web.Response(body=png, content_type="image/png", headers={
        "Cache-Control": "private, max-age=3600", "X-Certificate-Serial": row["serial"],
        "Content-Disposition": f'inline; filename="certificate-{row["serial"]}.png"'})


async def certificate_verify(request: web.Request) -> web.Response:
    return json_response(await _certificates(request).verify(request.match_info["serial"]))


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>证书验证 Certificate check</title>
<style>body{{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
background:#fdf8ec;color:#2a1e14}}
main{{max-width:30rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.8rem;
box-shadow:0 2px 10px #0002}}h1{{font-size:1.3rem}}.ok{{color:#1a7f37}}.bad{{color:#b02020}}
dt{{color:#7a6a58;font-size:.9rem}}dd{{margin:0 0 .7rem;font-size:1.1rem}}</style></head>
<body><main data-testid="verify">{body}</main></body></html>"""


async def verify_page(request: web.Request) -> web.Response:
    """A page that needs no script (WeChat opens it from the QR code): the verification, in Chinese first."""
    try:
        cert = await _certificates(request).verify(request.match_info["serial"])
    except NotFound:
        body = ('<h1 class="bad" data-testid="verify-status">未找到该证书</h1>'
                "<p>No certificate has this serial. 请核对证书上的编号。</p>")
        return web.Response(text=_PAGE.format(body=body), content_type="text/html", status=404)
    e = html.escape
    status = ('<h1 class="ok" data-testid="verify-status">证书有效 · Valid</h1>' if cert["valid"] else
              f'<h1 class="bad" data-testid="verify-status">证书无效 · Not valid</h1><p>{e(cert["reason"])}</p>')
    rows = [("竞赛 Contest", cert["contest"]), ("获证人 Holder", cert["masked_name"]),
            ("成绩 Score", f'{cert["score"]} 分'), ("证书编号 Serial", cert["serial"])]
    if cert.get("rank"):
        rows.insert(3, ("颁发时排名 Rank at issue", f'第 {cert["rank"]} 名'))
    contest = request.config_dict[CATALOG].contests.get(cert["contest_id"])
    tz = contest.tz if contest is not None else ZoneInfo("Asia/Shanghai")
    issued = dt.datetime.fromtimestamp(cert["issued_at"] / 1000, tz=tz)
    rows.append(("颁发时间 Issued", f"{issued.year}年{issued.month}月{issued.day}日 {issued:%H:%M}"))
    details = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in rows)
    return web.Response(text=_PAGE.format(body=f"{status}<dl>{details}</dl>"),
                        content_type="text/html", headers={"Cache-Control": "no-cache"})
