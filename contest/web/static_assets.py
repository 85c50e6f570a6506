"""Static files under content-hashed URLs, compressed once, cached for a year by browsers.

Every file under ``contest/static`` is read once and every ``/static/<path>`` reference inside an
HTML, JS or CSS file is rewritten to ``/static/<dir>/<name>.<hash>.<ext>``, the hash covering the
rewritten text, so a change to ``common/util.js`` also renames every module that imports it.
Pages and scripts are written with plain ``/static/...`` paths and nobody hand-edits a hash.

- hashed URLs: ``Cache-Control: public, max-age=31536000, immutable`` (a second visit sends no
  request for them);
- HTML pages and plain ``/static/...`` URLs: ``no-cache`` with a weak ETag (a 304 costs ~200 B);
- an unknown hash (a page cached by a phone across a deploy) gets the current file, ``no-cache``,
  rather than a 404 that would break the page;
- gzip level 9 and brotli quality 11, each computed once per content hash per process, in a
  worker thread and only when first asked for, so a server that only takes answers (or a
  benchmark) never spends CPU on them; while the slow brotli pass runs, gzip is served.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web

from contest.web.compression import add_vary, compress, is_compressible, negotiate

__all__ = ["IMMUTABLE", "STATIC_ROOT", "Asset", "AssetResponse", "Assets", "assets_for", "page_handler",
           "serve_static"]

STATIC_ROOT = Path(__file__).resolve().parents[1] / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
_TEXT_EXT = frozenset({".html", ".js", ".mjs", ".css"})  # files whose /static/ references are rewritten
_REF = re.compile(r"/static/([A-Za-z0-9_\-./]+)")
_HASHED = re.compile(r"^(?P<stem>.+?)\.(?P<digest>[0-9a-f]{12})(?P<ext>\.[A-Za-z0-9]+)?$")
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".json": "application/json", ".svg": "image/svg+xml", ".txt": "text/plain", "": "text/plain"}

# content-hash -> coding -> bytes, shared by every app of the process (tests make hundreds)
_COMPRESSED: dict[tuple[str, str], bytes] = {}
_PENDING: dict[tuple[str, str], Future[bytes]] = {}
_LOCK = threading.Lock()
# one thread: compressing is a one-off per file, and must not take both cores from live traffic
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="static-compress")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AssetResponse(web.Response):
    """A static file's response: its body is already encoded, so the compression middleware skips it."""


@dataclass(frozen=True)
class Asset:
    rel: str            # "h5/app.js"
    body: bytes         # rewritten content
    content_type: str
    digest: str

    @property
    def hashed_rel(self) -> str:
        head, dot, ext = self.rel.rpartition(".")
        if not dot or "/" in ext:
            return f"{self.rel}.{self.digest}"
        return f"{head}.{self.digest}.{ext}"

    @property
    def url(self) -> str:
        return f"/static/{self.hashed_rel}"

    @property
    def etag(self) -> str:
        # weak: one validator for every content-coding of the same content (as nginx does)
        return f'W/"{self.digest}"'

    @property
    def compressible(self) -> bool:
        return is_compressible(self.content_type.split(";")[0]) and len(self.body) >= 256

    def encoded(self, codings: tuple[str, ...]) -> tuple[str | None, bytes] | None:
        """The best ready variant among ``codings``; None when one must be computed first."""
        if not self.compressible or not codings:
            return None, self.body
        for coding in codings:
            ready = _COMPRESSED.get((self.digest, coding))
            if ready is not None:
                return coding, ready
        return None

    async def encode(self, codings: tuple[str, ...]) -> tuple[str | None, bytes]:
        """The best variant, computing gzip now (tens of ms) rather than waiting for brotli 11 (seconds)."""
        for coding in sorted(codings, key=lambda c: c != "gzip"):  # the quick one first in the queue
            _schedule(self, coding)
        ready = self.encoded(codings)
        if ready is not None:
            return ready
        quick = "gzip" if "gzip" in codings else codings[0]
        return quick, await asyncio.to_thread(_compress_once, self, quick)


def _compress_once(asset: Asset, coding: str) -> bytes:
    key = (asset.digest, coding)
    ready = _COMPRESSED.get(key)
    if ready is not None:
        return ready
    packed = compress(asset.body, coding, best=True)
    if len(packed) >= len(asset.body):  # incompressible after all: serve it as is
        packed = asset.body
    _COMPRESSED[key] = packed
    return packed


def _schedule(asset: Asset, coding: str) -> None:
    key = (asset.digest, coding)
    with _LOCK:
        if key not in _PENDING:
            _PENDING[key] = _POOL.submit(_compress_once, asset, coding)


class Assets:
    """Every file of one static directory, rewritten and hashed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        raw = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        self.by_rel: dict[str, Asset] = {}
        self.deps: dict[str, list[str]] = {}  # rel -> the /static/ files it names, hashed or not
        for rel in raw:
            self._build(rel, raw, ())
        self.by_hashed = {a.hashed_rel: a for a in self.by_rel.values()}

    def _build(self, rel: str, raw: dict[str, bytes], stack: tuple[str, ...]) -> Asset | None:
        if rel in self.by_rel:
            return self.by_rel[rel]
        if rel in stack:  # an import cycle: that one reference stays unhashed (still served, no-cache)
            return None
        ext = os.path.splitext(rel)[1].lower()
        body = raw[rel]
        if ext in _TEXT_EXT:
            deps: list[str] = []

            def hashed(match: re.Match[str]) -> str:
                target = match.group(1)
                dep = self._build(target, raw, (*stack, rel)) if target in raw else None
                if target in raw and target not in deps:
                    deps.append(target)
                return dep.url if dep is not None else match.group(0)

            text = _REF.sub(hashed, body.decode("utf-8"))
            self.deps[rel] = deps
            if ext == ".html":
                text = self._preload_modules(text, deps)
            body = text.encode("utf-8")
        ctype = _TYPES.get(ext) or mimetypes.guess_type(rel)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/json", "image/svg+xml"):
            ctype += "; charset=utf-8"
        asset = Asset(rel, body, ctype, hashlib.sha256(body).hexdigest()[:12])
        self.by_rel[rel] = asset
        return asset

    def _preload_modules(self, html: str, deps: list[str]) -> str:
        """``<link rel=modulepreload>`` for every module the page's modules import, however deep.

        Without it a phone learns of ``common/util.js`` only after ``dashboard.js`` has arrived and
        been parsed, and of what util imports one round trip later; with it every module is asked
        for with the page (one round trip on HTTP/2). Browsers without modulepreload ignore it.
        """
        entries = [d for d in deps if d.endswith((".js", ".mjs"))
                   and re.search(rf'<script[^>]*type="module"[^>]*src="{re.escape(self.by_rel[d].url)}"', html)]
        seen: list[str] = []
        todo = [dep for entry in entries for dep in self.deps.get(entry, [])]
        while todo:
            rel = todo.pop(0)
            if rel in seen or rel in entries or not rel.endswith((".js", ".mjs")) or rel not in self.by_rel:
                continue
            seen.append(rel)
            todo.extend(self.deps.get(rel, []))
        if not seen or "</head>" not in html:
            return html
        links = "".join(f'  <link rel="modulepreload" href="{self.by_rel[rel].url}">\n' for rel in seen)
        return html.replace("</head>", links + "</head>", 1)

    def find(self, rel: str) -> tuple[Asset | None, bool]:
        """(asset, immutable) for a path under /static/; an unknown hash falls back to the current file."""
        asset = self.by_hashed.get(rel)
        if asset is not None:
            return asset, True
        asset = self.by_rel.get(rel)
        if asset is None and (m := _HASHED.match(rel)):
            asset = self.by_rel.get(m["stem"] + (m["ext"] or ""))
        return asset, False

    async def respond(self, request: web.Request, asset: Asset, cache_control: str) -> web.StreamResponse:
        headers = {hdrs.CACHE_CONTROL: cache_control, hdrs.ETAG: asset.etag}
        if cache_control != IMMUTABLE and _etag_matches(request.headers.get(hdrs.IF_NONE_MATCH, ""), asset.digest):
            response = web.Response(status=304, headers=headers)
            if asset.compressible:
                add_vary(response)
            return response
        codings = negotiate(request.headers.get(hdrs.ACCEPT_ENCODING, "")) if asset.compressible else ()
        coding, body = asset.encoded(codings) or await asset.encode(codings)
        if coding is not None and body is not asset.body:
            headers[hdrs.CONTENT_ENCODING] = coding
        response = AssetResponse(body=body, headers=headers)
        response.headers[hdrs.CONTENT_TYPE] = asset.content_type
        if asset.compressible:
            add_vary(response)
        return response


def _etag_matches(header: str, digest: str) -> bool:
    return bool(header) and (header.strip() == "*" or f'"{digest}"' in header)


_BUILT: dict[Path, tuple[tuple[int, int], Assets]] = {}


def _signature(root: Path) -> tuple[int, int]:
    """File count and newest mtime: cheap enough per app, and a file edited during development is seen
    by the next app made (tests make a new one per test)."""
    count, newest = 0, 0
    for path in root.rglob("*"):
        count += 1
        newest = max(newest, path.stat().st_mtime_ns)
    return count, newest


def assets_for(root: Path = STATIC_ROOT) -> Assets:
    """The process's ``Assets`` for ``root``, rebuilt when a file there changed."""
    sig = _signature(root)
    built = _BUILT.get(root)
    if built is None or built[0] != sig:
        built = (sig, Assets(root))
        _BUILT[root] = built
    return built[1]


def page_handler(rel: str, assets: Assets) -> Handler:
    """An HTML page (``/``, ``/dashboard/``...): revalidated on every visit, so a deploy shows at once."""
    asset = assets.by_rel[rel]

    async def handler(request: web.Request) -> web.StreamResponse:
        return await assets.respond(request, asset, "no-cache")

    return handler


def serve_static(assets: Assets) -> Handler:
    """``GET /static/{path}``: hashed names for a year, plain names revalidated."""
    async def handler(request: web.Request) -> web.StreamResponse:
        asset, immutable = assets.find(request.match_info["path"])
        if asset is None:
            raise web.HTTPNotFound()
        return await assets.respond(request, asset, IMMUTABLE if immutable else "no-cache")

    return handler
