"""The front door: every HTTP/1.x connection the service accepts, framed by llhttp before anything acts.

Why a door of our own in front of aiohttp:
- Phones on 4G and hotel Wi-Fi send a request's head and body in separate segments and stall in
  the middle.  The door frames each request with llhttp (the parser of Node.js, through
  ``httptools``), so nothing acts on a message before it is whole, and it enforces read timeouts:
  a head must arrive within ``QUIZ_HEADER_TIMEOUT_S``, a body within ``QUIZ_BODY_TIMEOUT_S`` plus
  its length at ``QUIZ_BODY_MIN_RATE`` bytes/s, an idle keep-alive connection is closed after
  ``QUIZ_KEEPALIVE_TIMEOUT_S``, and above ``QUIZ_MAX_CONNECTIONS`` the longest-idle connection
  makes room for a new one.  A trickling or stalled client is cut off and logged, unanswered.
- Answers take the lane (contest/web/answer_lane.py) on every connection, mixed with any other
  requests: a phone's keep-alive connection and nginx's upstream connections carry both.
- Everything else reaches aiohttp through public interfaces only: each connection gets, when it
  first needs one, a protocol from ``AppRunner.server`` (the factory aiohttp hands to
  ``loop.create_server``), connected to an ``InnerTransport`` of ours.  The door feeds it each
  request as one well-formed message (the head re-serialised from what llhttp parsed, the body
  as it arrives, re-chunked when it came chunked), and ``front_door_middleware`` (public
  middleware API) finishes each response and tells the door, so the next request can go.
- Malformed HTTP never reaches aiohttp: the door answers it in the contract's JSON shape (400
  ``bad_request``) and closes the connection.  The limits are aiohttp's: a request line or a
  header line up to 8,190 bytes, at most 128 headers, ``Host`` required on HTTP/1.1.

Ordering: one response is owed at a time per connection; requests parsed meanwhile wait (reading
pauses beyond 1 MiB waiting), so pipelined requests are answered in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httptools
from aiohttp import web

from contest.appkeys import METRICS, SETTINGS
from contest.metrics import Metrics
from contest.settings import Settings
from contest.web.answer_lane import AnswerLane, is_answer_target, response_bytes
from contest.web.errors import error_body

__all__ = ["FrontDoor", "FrontDoorServer", "InnerTransport", "front_door_middleware", "serve"]

log = logging.getLogger(__name__)

# aiohttp's own limits (RequestHandler defaults), so both paths accept and refuse the same heads
MAX_LINE = 8190
MAX_FIELD = 8190
MAX_HEADERS = 128
# A head is bounded by the limits above; this guards the parser's buffer against one endless
# header value, which llhttp hands over in pieces that httptools joins.
_MAX_HEAD_BYTES = 2 << 20
_MAX_WAITING = 1 << 20  # bytes of parsed requests held behind an owed response before reading pauses
_INF = float("inf")

_LANE, _AIO, _ERROR = 0, 1, 2
_H_LENGTH, _H_AUTH, _H_XFF, _H_HOST, _H_LANGUAGE, _H_CHUNKED, _H_NOT_PLAIN = range(7)
_HEADER_KINDS = {b"content-length": _H_LENGTH, b"authorization": _H_AUTH, b"x-forwarded-for": _H_XFF,
                 b"host": _H_HOST, b"accept-language": _H_LANGUAGE, b"transfer-encoding": _H_CHUNKED,
                 b"expect": _H_NOT_PLAIN, b"content-encoding": _H_NOT_PLAIN}


class _Refused(Exception):
    """Raised inside a parser callback: the request breaks a limit."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Message:
    """One request as the door sees it."""

    __slots__ = ("auth", "body", "chunked", "complete", "error", "headers", "headers_done", "head_seen", "host",
                 "keep_alive", "kind", "language", "length", "out", "out_bytes", "plain", "received", "responded",
                 "started", "target", "xff")

    def __init__(self) -> None:
        self.kind = _AIO
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.head_seen = 0
        self.host = False
        self.length: int | None = None
        self.chunked = False
        self.plain = True
        self.auth = ""
        self.xff: str | None = None
        self.language: str | None = None
        self.keep_alive = True
        self.body: list[bytes] = []
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.received = 0
        self.complete = False
        self.started = False
        self.responded = False
        self.error: tuple[int, str] = (400, "")


class InnerTransport(asyncio.Transport):
    """The transport aiohttp's protocol is given: writes go to the client's connection."""

    def __init__(self, door: FrontDoor) -> None:
        super().__init__()
        self.door = door
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self.door.transport
        return default if transport is None else transport.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closed:
            self.door.inner_write(data if isinstance(data, bytes) else bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        transport = self.door.transport
        return self.closed or transport is None or transport.is_closing()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.door.inner_closed(self)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.door.pause("aiohttp")

    def resume_reading(self) -> None:
        self.door.resume("aiohttp")

    def is_reading(self) -> bool:
        return "aiohttp" not in self.door.pauses

    def get_write_buffer_size(self) -> int:
        transport = self.door.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    def response_done(self) -> None:
        """aiohttp wrote the whole response to the current request (front_door_middleware)."""
        if not self.closed:
            self.door.aio_done()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def front_door_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Finish each response and tell the door, which then lets the connection's next request go.

    A prepared and finished response is what streaming handlers return anyway; aiohttp's own
    ``prepare``/``write_eof`` afterwards are no-ops.
    """
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and the like, which the error middleware passes on
        response = exc
    transport = request.transport
    if isinstance(transport, InnerTransport):
        if not response.prepared:
            await response.prepare(request)
        await response.write_eof()
        transport.response_done()
    return response


class FrontDoor(asyncio.Protocol):
    """One client connection: llhttp framing, the answer lane, aiohttp behind, read timeouts."""

    def __init__(self, server: FrontDoorServer) -> None:
        self.server = server
        self.loop = server.loop
        self.settings = server.settings
        self.lane = server.lane
        self.transport: asyncio.Transport | None = None
        self.peer_ip: str | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Message] = deque()
        self.parsing: _Message | None = None
        self.owed = False  # the response to queue[0] is being produced
        self.pumping = False
        self.closing = False  # close once the owed response is out (shutdown, Connection: close)
        self.broken = False  # the parser cannot go on: nothing more is read
        self.inner: asyncio.Protocol | None = None
        self.inner_transport: InnerTransport | None = None
        self.pauses: set[str] = set()
        self.paused_at = 0.0
        self.writing_paused = False
        self.write_stalled_at = 0.0
        self.waiting = 0
        self.deadline = _INF
        self.deadline_reason = ""
        self.idle_since = 0.0

    # ---- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        peer = self.transport.get_extra_info("peername")
        self.peer_ip = peer[0] if isinstance(peer, tuple) else None
        self.server.admit(self)
        self._idle()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        self.server.forget(self)
        self.queue.clear()
        self.parsing = None
        inner, self.inner = self.inner, None
        if inner is not None:
            if self.inner_transport is not None:
                self.inner_transport.closed = True
            inner.connection_lost(exc if isinstance(exc, Exception) or exc is None else ConnectionResetError())

    def eof_received(self) -> bool | None:
        return None  # the transport closes, as with aiohttp's own protocol

    def pause_writing(self) -> None:
        # the client is not reading its responses: stop reading its requests too, so a client
        # that pipelines without reading cannot grow our write buffer without bound
        self.writing_paused = True
        self.write_stalled_at = self.loop.time()
        self.pause("writing")
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.resume("writing")
        if self.inner is not None:
            self.inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self.broken or self.transport is None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # A protocol switch (Upgrade, CONNECT): the app offers none.  aiohttp answers the
            # request; what follows is not HTTP, so the connection ends after that answer.
            self.broken = True
            if self.queue:
                last = self.queue[-1]
                last.keep_alive = False
                if not last.complete:  # what follows the head is the other protocol's, not a body
                    last.complete = True
                    self.parsing = None
                    if last.responded and self.queue[0] is last:
                        self._finish_active()
            self.pause("broken")
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.status, cause.message)
            else:
                log.error("front door: a parser callback failed", exc_info=cause or exc)
                self._refuse(500, "")
            return
        except httptools.HttpParserError as exc:
            self._refuse(400, str(exc) or type(exc).__name__)
            return
        request = self.parsing
        if request is not None and not request.headers_done:
            request.head_seen += len(data)
            if request.head_seen > _MAX_HEAD_BYTES:
                self._refuse(400, "request head too large")

    # ---- llhttp callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.parsing = _Message()
        self._set_deadline(self.settings.header_timeout_s, "header_timeout")

    def on_url(self, url: bytes) -> None:
        request = self.parsing
        assert request is not None
        request.target += url
        if len(request.target) > MAX_LINE:
            raise _Refused(400, f"Status line is too long (over {MAX_LINE} bytes)")

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.parsing
        assert request is not None
        headers = request.headers
        headers.append((name, value))
        if len(headers) > MAX_HEADERS or len(name) + len(value) > MAX_FIELD - 2:
            if len(headers) > MAX_HEADERS:
                raise _Refused(400, f"Too many headers (over {MAX_HEADERS})")
            raise _Refused(400, f"Header field is too long (over {MAX_FIELD} bytes)")
        kind = _HEADER_KINDS.get(name.lower())  # most of a phone's dozen headers are none of ours
        if kind is None:
            return
        if kind == _H_LENGTH:
            request.length = int(value)  # llhttp has checked it is digits, once
        elif kind == _H_AUTH or kind == _H_XFF:
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                request.plain = False
                return
            if kind == _H_AUTH:
                request.plain = request.plain and not request.auth
                request.auth = text
            else:
                request.plain = request.plain and request.xff is None
                request.xff = text
        elif kind == _H_HOST:
            request.host = True
        elif kind == _H_LANGUAGE:  # errors are worded in the reader's language
            request.language = value.decode("latin-1")
        elif kind == _H_CHUNKED:
            request.chunked = b"chunked" in value.lower()
            request.plain = False
        else:  # Expect, Content-Encoding: aiohttp's to handle
            request.plain = False

    def on_headers_complete(self) -> None:
        request = self.parsing
        assert request is not None
        parser = self.parser
        request.headers_done = True
        request.keep_alive = parser.should_keep_alive() and not self.closing
        version = parser.get_http_version()
        if version == "1.1" and not request.host:
            raise _Refused(400, "Missing 'Host' header in request.")
        method = parser.get_method()
        lane = self.lane
        if (lane is not None and method == b"POST" and version == "1.1" and request.plain
                and request.length is not None and request.length <= lane.max_body
                and not parser.should_upgrade() and is_answer_target(request.target)):
            request.kind = _LANE
        else:
            request.kind = _AIO
            head = b"%s %s HTTP/%s\r\n%s\r\n" % (method, request.target, version.encode(),
                                                 b"".join(b"%s: %s\r\n" % pair for pair in request.headers))
            request.out.append(head)
            request.out_bytes = len(head)
            self.waiting += len(head)
        request.headers = []
        if request.chunked or request.length:
            self._set_deadline(self._body_allowance(request.length or 0), "body_timeout")
        else:
            self.deadline = _INF
        self.queue.append(request)
        if len(self.queue) == 1 and not self.owed:
            self._pump()

    def on_body(self, body: bytes) -> None:
        request = self.parsing
        assert request is not None
        request.received += len(body)
        if request.chunked:  # the deadline grows with what has come, at the minimum rate
            allowance = self._body_allowance(request.received)
            self.deadline = max(self.deadline, self.loop.time() + allowance - self.settings.body_timeout_s)
        if request.kind == _LANE:
            request.body.append(body)
            request.out_bytes += len(body)
            self.waiting += len(body)
        else:
            self._to_aiohttp(request, b"%x\r\n%s\r\n" % (len(body), body) if request.chunked else body)
        # beyond 1 MiB of requests waiting behind an owed response, stop reading; never for the
        # oldest request's own body, which must come in for anything to move
        if self.waiting > _MAX_WAITING and self.queue and self.queue[0] is not request:
            self.pause("queue")

    def on_message_complete(self) -> None:
        request = self.parsing
        assert request is not None
        self.parsing = None
        request.complete = True
        self.deadline = _INF
        if request.kind == _AIO and request.chunked:
            self._to_aiohttp(request, b"0\r\n\r\n")
        if self.queue and self.queue[0] is request:
            if request.kind == _AIO:
                if request.responded:
                    self._finish_active()
            elif not self.owed:
                self._pump()

    # ---- dispatch ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Start the response to the oldest request while none is owed."""
        if self.pumping:
            return
        self.pumping = True
        try:
            while self.queue and not self.owed and self.transport is not None:
                request = self.queue[0]
                if request.kind == _LANE:
                    if not request.complete:
                        break
                    self.owed = True
                    self.waiting -= request.out_bytes
                    body = request.body[0] if len(request.body) == 1 else b"".join(request.body)
                    request.body = []
                    assert self.lane is not None
                    self.lane.answer(self, request.target, request.auth, request.xff, self.peer_ip, body,
                                     request.language)
                elif request.kind == _AIO:
                    self.owed = True
                    self._start_aiohttp(request)
                    break
                else:
                    status, message = request.error
                    self._write_and_close(status, message)
                    break
        finally:
            self.pumping = False
        if "queue" in self.pauses and self.waiting <= _MAX_WAITING:
            self.resume("queue")

    def lane_respond(self, status: int, body: bytes, headers: dict[str, str] | None) -> None:
        """The answer lane's response to the oldest request (contest/web/answer_lane.py)."""
        transport = self.transport
        if transport is None or not self.queue:
            return  # the client left; the answer itself is recorded
        request = self.queue.popleft()
        keep = request.keep_alive and not self.closing
        transport.write(response_bytes(status, body, headers, close=not keep))
        self.owed = False
        self._after_response(keep)

    def _start_aiohttp(self, request: _Message) -> None:
        if self.inner is None:
            inner_transport = InnerTransport(self)
            inner = self.server.aiohttp_protocol()
            self.inner, self.inner_transport = inner, inner_transport
            inner.connection_made(inner_transport)
            if self.writing_paused:
                inner.pause_writing()
        request.started = True
        data = b"".join(request.out)
        request.out = []
        self.waiting -= request.out_bytes
        request.out_bytes = 0
        self.inner.data_received(data)

    def _to_aiohttp(self, request: _Message, data: bytes) -> None:
        if request.started:
            if self.inner is not None:
                self.inner.data_received(data)
            return  # aiohttp closed: what is left of the body is dropped
        request.out.append(data)
        request.out_bytes += len(data)
        self.waiting += len(data)

    def inner_write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def aio_done(self) -> None:
        if not self.queue or self.queue[0].kind != _AIO:
            return
        request = self.queue[0]
        request.responded = True
        if request.complete:
            self._finish_active()

    def _finish_active(self) -> None:
        request = self.queue.popleft()
        self.owed = False
        self._after_response(request.keep_alive and not self.closing)

    def _after_response(self, keep: bool) -> None:
        """A response is out: close the connection unless it is kept alive, else go on with the next
        request in line or wait for one."""
        if not keep:
            self.close_now()
            return
        if self.queue:
            self._pump()
        else:
            self._idle()

    def inner_closed(self, inner_transport: InnerTransport) -> None:
        """aiohttp closed its side: after a response to keep-alive's end, or giving up mid-request."""
        if inner_transport is not self.inner_transport:
            return
        inner, self.inner, self.inner_transport = self.inner, None, None
        if inner is not None:
            self.loop.call_soon(inner.connection_lost, None)
        if self.queue and self.queue[0].kind == _AIO and self.queue[0].started and not self.queue[0].responded:
            self.close_now()  # no response will come: the client must not wait for one
        self.resume("aiohttp")

    # ---- refusals, timeouts, closing -------------------------------------------------------------
    def _refuse(self, status: int, message: str) -> None:
        """The request cannot be framed or breaks a limit: answer it (in order) and close."""
        self.broken = True
        self.pause("broken")
        request = self.parsing
        self.parsing = None
        self.deadline = _INF
        if request is not None and request.headers_done and request in self.queue:
            if request.started or (self.owed and self.queue[0] is request):
                self.server.closed("malformed")
                self.abort()  # aiohttp (or the lane) has part of it: no clean answer is possible
                return
            self.queue.remove(request)
            self.waiting -= request.out_bytes
        log.info("front door: refused a request from %s: %d %s", self.peer_ip, status, message)
        error = _Message()
        error.kind = _ERROR
        error.error = (status, message)
        self.queue.append(error)
        self._pump()

    def _write_and_close(self, status: int, message: str) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if status >= 500:
                body = error_body("internal_error", "internal error")
            else:
                body = error_body("bad_request", f"malformed request: {message}"[:300])
            transport.write(response_bytes(status, body, close=True))
        self.server.closed("malformed")
        self.close_now()

    def _body_allowance(self, length: int) -> float:
        return self.settings.body_timeout_s + length / self.settings.body_min_rate

    def _set_deadline(self, seconds: float, reason: str) -> None:
        self.deadline = self.loop.time() + seconds
        self.deadline_reason = reason

    def _idle(self) -> None:
        """Nothing owed and nothing being read: the keep-alive clock runs."""
        if self.closing:
            self.close_now()
            return
        if self.parsing is None:
            self.idle_since = self.loop.time()
            self.deadline = self.idle_since + self.settings.keepalive_timeout_s
            self.deadline_reason = "idle"

    @property
    def idle(self) -> bool:
        return not self.queue and self.parsing is None and not self.owed

    def check_deadline(self, now: float) -> None:
        """Called about once a second by the server: close a connection past its read deadline, or
        one whose client has left its responses unread for the send timeout."""
        if self.writing_paused and now - self.write_stalled_at > self.settings.send_timeout_s:
            log.warning("front door: closed a client %s that stopped reading its responses", self.peer_ip)
            self.server.closed("send_timeout")
            self.abort()
            return
        if now < self.deadline or self.pauses:
            return
        reason = self.deadline_reason
        if reason != "idle":
            request = self.parsing
            if request is None or not request.headers_done:
                progress = "head incomplete"
            else:
                length = request.length if request.length is not None else "?"
                progress = f"{request.received} of {length} body bytes"
            log.warning("front door: closed a slow client %s (%s: %s)", self.peer_ip, reason, progress)
        self.server.closed(reason)
        self.abort()

    def pause(self, reason: str) -> None:
        if not self.pauses and self.transport is not None and not self.transport.is_closing():
            self.paused_at = self.loop.time()
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()
        self.pauses.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self.pauses:
            return
        self.pauses.discard(reason)
        if not self.pauses and self.transport is not None and not self.transport.is_closing():
            # the time spent paused was ours, not the client's
            self.deadline += self.loop.time() - self.paused_at
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    def shutdown(self) -> None:
        """Stop taking requests: close now if idle, else once the owed response is out."""
        self.closing = True
        if self.idle or (not self.owed and not self.queue):
            self.close_now()

    def close_now(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class FrontDoorServer:
    """Listens for connections and gives each a ``FrontDoor``; owns the aiohttp ``AppRunner``."""

    def __init__(self, app: web.Application, *, lane: bool = True, shutdown_timeout: float = 10.0) -> None:
        self.app = app
        self.lane_wanted = lane
        self.shutdown_timeout = shutdown_timeout
        settings = app.get(SETTINGS)
        self.settings: Settings = settings if isinstance(settings, Settings) else Settings()
        if front_door_middleware not in app.middlewares:
            app.middlewares.insert(0, front_door_middleware)
        # aiohttp's own keep-alive clock would close its side of connections the lane keeps busy;
        # the door keeps time for the connection instead
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True, keepalive_timeout=86_400)
        self.connections: dict[FrontDoor, None] = {}
        self.lane: AnswerLane | None = None
        self.metrics = Metrics()
        self.listener: asyncio.Server | None = None
        self.ticker: asyncio.Task[None] | None = None
        self.drained: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop  # set by start(), before any connection

    def aiohttp_protocol(self) -> asyncio.Protocol:
        """A new aiohttp connection protocol (``web.Server`` is the protocol factory)."""
        server = self.runner.server
        assert server is not None, "start() first"
        return server()

    async def start(self, host: str | None = None, port: int | None = None, *, sock: Any = None,
                    reuse_port: bool = False, backlog: int = 1024) -> None:
        self.loop = asyncio.get_running_loop()
        await self.runner.setup()
        metrics = self.app.get(METRICS)
        if isinstance(metrics, Metrics):
            self.metrics = metrics
        self.lane = AnswerLane.of_app(self.app) if self.lane_wanted else None
        _raise_file_limit()
        if sock is not None:
            self.listener = await self.loop.create_server(lambda: FrontDoor(self), sock=sock, backlog=backlog)
        else:
            self.listener = await self.loop.create_server(lambda: FrontDoor(self), host, port or 0, backlog=backlog,
                                                          reuse_port=reuse_port or None)
        self.ticker = self.loop.create_task(self._tick(), name="front-door-deadlines")

    @property
    def port(self) -> int:
        assert self.listener is not None and self.listener.sockets
        return int(self.listener.sockets[0].getsockname()[1])

    def admit(self, door: FrontDoor) -> None:
        """A new connection: above the limit, the longest-idle keep-alive connection makes room."""
        limit = self.settings.max_connections
        if len(self.connections) >= limit:
            idle = [c for c in self.connections if c.idle]
            if idle:
                oldest = min(idle, key=lambda c: c.idle_since)
                self.closed("evicted")
                oldest.abort()
        self.connections[door] = None
        self.metrics.connections_open = len(self.connections)

    def forget(self, door: FrontDoor) -> None:
        self.connections.pop(door, None)
        self.metrics.connections_open = len(self.connections)
        if self.drained is not None and not self.connections:
            self.drained.set()

    def closed(self, reason: str) -> None:
        self.metrics.connections_closed[reason] += 1

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.settings.header_timeout_s / 4))
            now = self.loop.time()
            for door in list(self.connections):
                door.check_deadline(now)

    async def stop(self) -> None:
        """Stop listening, let owed responses go out (up to the shutdown timeout), close every
        connection, then aiohttp's shutdown and the app's cleanup contexts (the final flush)."""
        if self.listener is not None:
            self.listener.close()
        self.drained = asyncio.Event()
        for door in list(self.connections):
            door.shutdown()
        if self.connections:
            try:
                async with asyncio.timeout(self.shutdown_timeout):
                    await self.drained.wait()
            except TimeoutError:
                log.warning("front door: %d connections still busy at shutdown", len(self.connections))
        for door in list(self.connections):
            door.abort()
        if self.ticker is not None:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
        if self.listener is not None:
            await self.listener.wait_closed()
        await self.runner.cleanup()


def _raise_file_limit() -> None:
    """Every connection is a file descriptor: lift the soft limit to the hard one."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(app: web.Application, host: str, port: int, *, reuse_port: bool = False,
                shutdown_timeout: float = 10.0, lane: bool = True) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully (stop listening, finish requests in
    flight, run the cleanup contexts)."""
    server = FrontDoorServer(app, lane=lane, shutdown_timeout=shutdown_timeout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start(host, port, reuse_port=reuse_port)
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop()
