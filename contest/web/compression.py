"""Content-coding for responses: brotli or gzip, as the client's Accept-Encoding allows.

Phones on 4G pay for every kilobyte, so JSON bodies over 1 KB leave compressed; small ones (an
answer's reply is ~100 bytes) are sent as they are, because compressing them saves nothing and
costs CPU on the hottest path. Streams (the SSE live feed, CSV exports) are ``StreamResponse``s
and never pass through here: compressing a stream buffers its events.

Static files are compressed once per content hash by ``contest.web.static_assets``, which uses the
same negotiation and codecs.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

try:  # Google's ``brotli`` wheel (the "brotli" extra); without it the service offers gzip only
    import brotli
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    brotli = None  # type: ignore[assignment]  # None stands for "not installed" (HAVE_BROTLI)

__all__ = ["HAVE_BROTLI", "MIN_SIZE", "compress", "compression_middleware", "is_compressible", "negotiate"]

log = logging.getLogger(__name__)

HAVE_BROTLI = brotli is not None
MIN_SIZE = 1024  # below this a response gains less than its headers cost
# bodies above this are compressed in a worker thread, so one big org list does not stall the loop
_THREAD_SIZE = 128 * 1024
_TEXT_TYPES = frozenset({"application/json", "application/javascript", "text/javascript", "text/css", "text/html",
                         "text/plain", "text/csv", "image/svg+xml", "application/xml", "text/xml",
                         "application/manifest+json"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_compressible(content_type: str) -> bool:
    """Text formats; images, archives (xlsx is a zip) and event streams are not."""
    return content_type in _TEXT_TYPES


def negotiate(accept_encoding: str) -> tuple[str, ...]:
    """The codings this service can send that the client accepts, best first ("br", then "gzip").

    Honours ``q=0`` (refused) and ``*``; ignores other q-values' order on purpose: every browser
    that offers br prefers it, and brotli output is smaller at the levels used here.
    """
    if not accept_encoding:
        return ()
    accepted: dict[str, bool] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        refused = False
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    refused = float(value) <= 0
                except ValueError:
                    refused = True
        accepted[name.strip()] = not refused
    star = accepted.get("*", False)
    out = []
    for coding in (("br", "gzip") if HAVE_BROTLI else ("gzip",)):
        if accepted.get(coding, star):
            out.append(coding)
    return tuple(out)


def compress(data: bytes, coding: str, *, best: bool = False) -> bytes:
    """``data`` in ``coding``; ``best`` for content compressed once and served many times."""
    if coding == "br":
        assert brotli is not None
        # quality 11 is much slower than 5 for a little less size: worth it only when cached
        # (loadtest/README.md, "Figures behind the code")
        return bytes(brotli.compress(data, quality=11 if best else 5))
    if coding == "gzip":
        return gzip.compress(data, compresslevel=9 if best else 6, mtime=0)
    raise ValueError(f"unknown content-coding {coding!r}")


def add_vary(response: web.StreamResponse) -> None:
    vary = response.headers.get(hdrs.VARY, "")
    if "accept-encoding" not in vary.lower():
        response.headers[hdrs.VARY] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"


@web.middleware
async def compression_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Compress plain ``web.Response`` text bodies of at least 1 KB (JSON above all).

    Exact type check on purpose: subclasses (``FileResponse``, the static assets' own response
    that carries a precompressed body) and every ``StreamResponse`` pass untouched.
    """
    response = await handler(request)
    if type(response) is not web.Response:
        return response
    body = response.body
    if not isinstance(body, bytes | bytearray) or len(body) < MIN_SIZE or not is_compressible(response.content_type):
        return response
    if hdrs.CONTENT_ENCODING in response.headers or response.status in (204, 206, 304):
        return response
    add_vary(response)
    codings = negotiate(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
    if not codings:
        return response
    coding = codings[0]
    if len(body) > _THREAD_SIZE:
        packed = await asyncio.to_thread(compress, bytes(body), coding)
    else:
        packed = compress(bytes(body), coding)
    if len(packed) >= len(body):
        return response
    response.body = packed
    response.headers[hdrs.CONTENT_ENCODING] = coding
    return response
