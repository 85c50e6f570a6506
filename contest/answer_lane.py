"""The answer lane: ``POST /api/v1/attempts/{aid}/answers`` served straight from the HTTP protocol.

Why: on the hot path aiohttp's per-request machinery (a Request and a StreamReader, a task per
request, the router, three middlewares, a Response, header building, the access-log hook) cost
several times what the answer itself does in Python; a bare aiohttp handler spends ~100 µs of
CPU per request on the development VM where a plain asyncio protocol spends ~16 µs.  An answer is
small, frequent and always the same shape, so it gets a lane of its own; everything else (and
every answer that is not of that plain shape) still goes through aiohttp unchanged.

How: ``AnswerLane`` is aiohttp's per-connection protocol (``RequestHandler``) with its
``data_received`` in front.  It frames each request itself: request line, headers, a
``Content-Length`` body.  An answer of the plain shape is handled right there: the token (same
cache as the web layer), the body (same validation), the per-IP limit, ``Play.prepare_answer``,
then one EVALSHA queued with ``ScriptRunner.send``; the reply callback writes the response.  No
task, future, Request or Response object is made for it.  Any other request is handed to
aiohttp's own parser as one whole message (head, then exactly its body bytes), so that parser
always starts at a message boundary and its routes, middlewares and errors apply as before.

One request at a time per connection: while a response is owed (lane or aiohttp), later bytes
wait in the buffer, so pipelined requests are answered in order.  Whatever the framer cannot be
sure of (Transfer-Encoding, Upgrade, HTTP/1.0, a duplicate or non-numeric Content-Length, folded
or malformed header lines, a bare LF, a head over 16 KiB) hands the connection to aiohttp for good.
Errors, status codes, bodies, metrics and 503s are the web layer's own, through the same
functions (``tests/test_answer_lane.py`` runs the contract's answer cases through both).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web, web_protocol
from aiohttp.http import SERVER_SOFTWARE

from contest.appkeys import METRICS, PLAY, RUNNER, SETTINGS
from contest.auth import claims_of_header, require_role
from contest.contests import Contest
from contest.errors import error_body, error_of
from contest.jsonio import parse_json_object
from contest.metrics import Metrics
from contest.play import Play
from contest.ratelimit import LIMITER, RateLimiter, client_ip
from contest.redis_client import ReplyWaiter, ScriptRunner
from contest.settings import Settings
from contest.views.participant import answer_fields
from leaderboard.guard_scripts import RATE_LIMIT
from leaderboard.scripts import Script

__all__ = ["AnswerLane", "LaneAppRunner", "LaneServer", "serve"]

log = logging.getLogger(__name__)

ROUTE = "/api/v1/attempts/{aid}/answers"
_PREFIX = b"/api/v1/attempts/"
_SUFFIX = b"/answers"
# attempt ids are "<cid>.<token>" or "<cid>.<shard>.<token>" (URL-safe); anything else (percent
# escapes, dot segments, a query string) goes to aiohttp, which normalises and routes it
_AID = re.compile(rb"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}\Z")
_MAX_HEAD = 16_384
_MAX_WAITING = 1 << 20  # bytes buffered behind an owed response before reading pauses
_PARTICIPANT = ("participant",)
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_SERVER = f"Server: {SERVER_SOFTWARE}\r\n".encode()
_date_cache: list[Any] = [0, b""]


def _date_header() -> bytes:
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0] = now
        _date_cache[1] = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
    return _date_cache[1]


def response_bytes(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """One whole HTTP/1.1 response with a JSON body, as aiohttp would have written it."""
    extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items()) if headers else b""
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s%s\r\n%s" % (
        status, _REASONS.get(status, b"Unknown"), len(body), _date_header(), _SERVER, extra, body)


@dataclass(slots=True)
class Head:
    """What the lane needs of a request head (``plain``: no header that asks for aiohttp)."""

    method: bytes
    target: bytes
    length: int
    authorization: str
    forwarded_for: str | None
    plain: bool


# A whole head the lane can read: a request line of HTTP/1.1, then "token:value" lines only (no
# folded or colon-less line, no space before a colon, no control character but tab, so no bare
# CR or LF).  One regex in C instead of a Python loop over the lines, which cost ~18 µs for a
# phone's ten headers; the wanted headers are then found with bytes.find (~3 µs for all).
_HEAD = re.compile(rb"[A-Z]+ [^ \x00-\x1f\x7f]+ HTTP/1\.1"
                   rb"(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\x00-\x08\x0a-\x1f\x7f]*)*")
_LENGTH, _GIVE_UP, _AUTH, _XFF, _CONNECTION, _NOT_PLAIN = range(6)
_WANTED = tuple((b"\r\n" + name + b":", kind) for name, kind in (
    (b"content-length", _LENGTH), (b"authorization", _AUTH), (b"x-forwarded-for", _XFF),
    (b"connection", _CONNECTION), (b"transfer-encoding", _GIVE_UP), (b"upgrade", _GIVE_UP),
    (b"expect", _NOT_PLAIN), (b"content-encoding", _NOT_PLAIN)))


def parse_head(head: bytes) -> Head | None:
    """The request head (without its blank line), or None when only aiohttp should read it."""
    if _HEAD.fullmatch(head) is None:
        return None
    method, _, rest = head.partition(b" ")
    target = rest[:rest.index(b" ")]
    low = head.lower()
    length = 0
    auth = ""
    xff: str | None = None
    plain = True
    for name, kind in _WANTED:
        at = low.find(name)
        if at < 0:
            continue
        twice = low.find(name, at + 1) >= 0
        start = at + len(name)
        end = head.find(b"\r\n", start)
        value = head[start:end if end >= 0 else len(head)].strip(b" \t")
        if kind == _LENGTH:
            if twice or not value.isdigit() or len(value) > 12:
                return None  # a second or a non-numeric Content-Length
            length = int(value)
        elif kind == _AUTH or kind == _XFF:
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            plain = plain and not twice
            if kind == _AUTH:
                auth = text
            else:
                xff = text
        elif kind == _CONNECTION:
            plain = plain and not twice and value.lower() == b"keep-alive"
        elif kind == _GIVE_UP:
            return None  # chunked framing, or a protocol switch: the connection is aiohttp's
        else:
            plain = False  # Expect, Content-Encoding: aiohttp handles those
    return Head(method, target, length, auth, xff, plain)


@dataclass(slots=True)
class LaneContext:
    """The app's parts the lane uses, looked up once per server."""

    play: Play
    limiter: RateLimiter
    metrics: Metrics
    settings: Settings
    runner: ScriptRunner


class _Answer(ReplyWaiter):
    """The ANSWER reply of one lane request: turned into the response and written."""

    __slots__ = ("contest", "index", "lane", "started")

    def __init__(self, lane: AnswerLane, contest: Contest, index: int, started: float, runner: ScriptRunner,
                 script: Script, keys: tuple[str, ...], args: tuple[Any, ...]) -> None:
        super().__init__(runner, script, keys, args)
        self.lane = lane
        self.contest = contest
        self.index = index
        self.started = started

    def on_reply(self, reply: Any) -> None:
        lane = self.lane
        ctx = lane._lane_ctx
        assert ctx is not None
        try:
            lane._lane_done(200, ctx.play.answer_result(self.contest, self.index, reply), self.started)
        except Exception as exc:
            self.on_error(exc)

    def on_error(self, exc: BaseException) -> None:
        try:
            self.lane._lane_failed(exc, self.started)
        except Exception:  # never let a client's trouble break the Redis reply loop
            log.exception("answer lane: writing an error response failed")


class _Verdict(ReplyWaiter):
    """The per-IP counting call that rides along with an answer (see contest/ratelimit.py)."""

    __slots__ = ("ip", "limiter")

    def __init__(self, limiter: RateLimiter, ip: str, runner: ScriptRunner, keys: tuple[str, ...],
                 args: tuple[Any, ...]) -> None:
        super().__init__(runner, RATE_LIMIT, keys, args)
        self.limiter = limiter
        self.ip = ip

    def on_reply(self, reply: Any) -> None:
        try:
            self.limiter.note_verdict("answer_ip", self.ip, reply)
        except Exception:
            log.exception("answer lane: a rate-limit verdict could not be read")

    def on_error(self, exc: BaseException) -> None:
        """Redis trouble shows in the answer's own outcome."""


class AnswerLane(web_protocol.RequestHandler):
    """aiohttp's connection protocol with the answer lane in front of its parser."""

    __slots__ = ("_lane_buf", "_lane_busy", "_lane_ctx", "_lane_forward", "_lane_idle", "_lane_off",
                 "_lane_paused", "_lane_slow")

    def __init__(self, manager: LaneServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._lane_buf = b""
        self._lane_busy = False  # a lane response is owed
        self._lane_slow = 0  # messages handed to aiohttp and not answered yet
        self._lane_forward = 0  # body bytes of the message aiohttp is reading, still to come
        self._lane_off = False  # the connection is aiohttp's for good
        self._lane_paused = False
        self._lane_idle: asyncio.Future[None] | None = None
        self._lane_ctx: LaneContext | None = manager.lane_context()

    # ---- framing ----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._lane_off:
            super().data_received(data)
            return
        if self._force_close or self._close:
            return
        if self._lane_forward:
            n = self._lane_forward
            if len(data) <= n:
                self._lane_forward = n - len(data)
                super().data_received(data)
                return
            self._lane_forward = 0
            super().data_received(data[:n])
            data = data[n:]
        self._lane_buf = self._lane_buf + data if self._lane_buf else data
        if self._lane_busy or self._lane_slow:
            if len(self._lane_buf) > _MAX_WAITING and self.transport is not None and not self._lane_paused:
                self._lane_paused = True
                self.transport.pause_reading()
            return
        self._lane_pump()

    def _lane_pump(self) -> None:
        """Frame and dispatch buffered requests while no response is owed."""
        while self._lane_buf and not (self._lane_busy or self._lane_slow or self._lane_off or self._lane_forward):
            if self._force_close or self._close or self.transport is None:
                self._lane_buf = b""
                return
            buf = self._lane_buf
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD or b"\n\n" in buf:
                    self._lane_give_up()
                return
            head = parse_head(buf[:end])
            if head is None:
                self._lane_give_up()
                return
            total = end + 4 + head.length
            ctx = self._lane_ctx
            if (ctx is not None and head.plain and head.method == b"POST" and head.target.startswith(_PREFIX)
                    and head.target.endswith(_SUFFIX) and head.length <= ctx.settings.max_body_bytes
                    and _AID.match(head.target, len(_PREFIX), len(head.target) - len(_SUFFIX))):
                if len(buf) < total:
                    return  # the body is on its way
                self._lane_buf = buf[total:]
                aid = head.target[len(_PREFIX):-len(_SUFFIX)].decode("ascii")
                self._lane_answer(ctx, aid, head, buf[end + 4:total])
                continue
            # aiohttp's: the head and what has come of the body now, the rest as it arrives
            have = min(len(buf), total)
            self._lane_buf = buf[have:]
            self._lane_forward = total - have
            self._lane_slow += 1
            super().data_received(buf[:have])
        if self._lane_paused and self.transport is not None and len(self._lane_buf) <= _MAX_WAITING:
            self._lane_paused = False
            self.transport.resume_reading()

    def _lane_give_up(self) -> None:
        self._lane_off = True
        buf, self._lane_buf = self._lane_buf, b""
        if self._lane_paused and self.transport is not None:
            self._lane_paused = False
            self.transport.resume_reading()
        if buf:
            super().data_received(buf)

    async def _handle_request(self, request: web.BaseRequest, start_time: float | None,
                              request_handler: Any) -> tuple[web.StreamResponse, bool]:
        """aiohttp answered one message: the next buffered request may go (in order)."""
        keep = False
        try:
            resp, reset = await super()._handle_request(request, start_time, request_handler)
            keep = not reset and resp.keep_alive is not False
            return resp, reset
        finally:
            if self._lane_slow:
                self._lane_slow -= 1
                if keep and not self._lane_slow and self._lane_buf:
                    self._loop.call_soon(self._lane_pump)

    # ---- one answer -------------------------------------------------------------------------
    def _lane_answer(self, ctx: LaneContext, aid: str, head: Head, body: bytes) -> None:
        started = time.perf_counter()
        ctx.metrics.lane_requests += 1
        try:
            claims = require_role(claims_of_header(head.authorization, ctx.settings), _PARTICIPANT)
            index, choice = answer_fields(parse_json_object(body))
            limiter = ctx.limiter
            peer = self.peername
            ip = client_ip(peer[0] if isinstance(peer, tuple) else None, head.forwarded_for, limiter.networks)
            limiter.refuse_if_blocked("answer_ip", ip)
            counting = limiter.ride_call("answer_ip", ip)
            if counting is not None:
                ctx.runner.send(RATE_LIMIT, *counting, _Verdict(limiter, ip, ctx.runner, *counting))
            contest, script, keys, args = ctx.play.prepare_answer(claims, aid, index, choice)
        except Exception as exc:
            self._lane_failed(exc, started)
            return
        self._lane_busy = True
        ctx.runner.send(script, keys, args, _Answer(self, contest, index, started, ctx.runner, script, keys, args))

    def _lane_failed(self, exc: BaseException, started: float) -> None:
        error, backend = error_of(exc, "POST", ROUTE)
        if backend and self._lane_ctx is not None:
            self._lane_ctx.metrics.errors[backend] += 1
        self._lane_write(error.status, error_body(error.code, error.message, error.details), error.headers, started)

    def _lane_done(self, status: int, result: dict[str, Any], started: float) -> None:
        self._lane_write(status, orjson.dumps(result), None, started)

    def _lane_write(self, status: int, body: bytes, headers: dict[str, str] | None, started: float) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(response_bytes(status, body, headers))
            self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout
            if self._keepalive_handle is None:
                self._keepalive_handle = self._loop.call_at(self._next_keepalive_close_time, self._process_keepalive)
        ctx = self._lane_ctx
        if ctx is not None:
            ctx.metrics.observe(ROUTE, status, time.perf_counter() - started)
        if self._lane_busy:
            self._lane_busy = False
            if self._lane_idle is not None and not self._lane_idle.done():
                self._lane_idle.set_result(None)
            if self._lane_buf:
                self._loop.call_soon(self._lane_pump)

    # ---- lifecycle ----------------------------------------------------------------------------
    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109  (aiohttp's signature)
        """Let a lane answer in flight be written (its Redis call is already out), then aiohttp's."""
        self._close = True  # take no new requests, as aiohttp's pre_shutdown does
        if self._lane_busy:
            self._lane_idle = self._loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._lane_idle
            except TimeoutError:
                log.warning("answer lane: a response was still owed at shutdown")
        await super().shutdown(timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._lane_buf = b""


# What the lane uses of aiohttp's protocol beyond its public surface (pyproject pins the tested
# releases); should a release drop any of it, aiohttp serves every request as before.
_LANE_SUPPORTED = all(hasattr(web_protocol.RequestHandler, name) for name in (
    "_handle_request", "_process_keepalive", "_keepalive_handle", "_next_keepalive_close_time",
    "_keepalive_timeout", "_force_close", "_close", "peername"))
if not _LANE_SUPPORTED:  # pragma: no cover - depends on the installed aiohttp
    log.warning("answer lane off: this aiohttp's RequestHandler lacks what the lane uses")


class LaneServer(web.Server):
    """aiohttp's server object whose connections are ``AnswerLane`` protocols."""

    def __init__(self, app: web.Application, server: web.Server) -> None:
        super().__init__(server.request_handler, request_factory=server.request_factory,
                         handler_cancellation=server.handler_cancellation, loop=server._loop, **server._kwargs)
        self.app = app
        self._lane_ctx: LaneContext | None = None

    def lane_context(self) -> LaneContext | None:
        if not _LANE_SUPPORTED:
            return None
        if self._lane_ctx is None:
            app = self.app
            try:
                self._lane_ctx = LaneContext(app[PLAY], app[LIMITER], app[METRICS], app[SETTINGS], app[RUNNER])
            except KeyError:  # an app without the play parts: everything goes to aiohttp
                return None
        return self._lane_ctx

    def __call__(self) -> web_protocol.RequestHandler:
        if self.lane_context() is None:  # no lane for this app or this aiohttp: aiohttp's own protocol
            return web_protocol.RequestHandler(self, loop=self._loop, **self._kwargs)
        return AnswerLane(self, loop=self._loop, **self._kwargs)


class LaneAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server runs the answer lane."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return LaneServer(self.app, server)


async def serve(app: web.Application, host: str, port: int, *, reuse_port: bool = False,
                shutdown_timeout: float = 10.0, lane: bool = True) -> None:
    """``web.run_app`` with the answer lane: serve until SIGTERM/SIGINT, then shut down gracefully
    (stop listening, finish requests in flight, run the cleanup contexts)."""
    import signal

    runner = (LaneAppRunner if lane else web.AppRunner)(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
