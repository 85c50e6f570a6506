"""The answer lane: ``POST /api/v1/attempts/{aid}/answers`` served without aiohttp's request machinery.

Why: on the hot path aiohttp's per-request machinery (a Request and a StreamReader, a task per
request, the router, three middlewares, a Response, header building, the access-log hook) cost
several times what the answer itself does in Python, and several times what a plain asyncio
protocol spends per request (loadtest/README.md, "Figures behind the code").  An answer is small,
frequent and always the same shape, so it gets a lane of its own.

The front door (contest/web/front_door.py) frames every request with llhttp and hands a plain answer
(a Content-Length body within the limit, no Expect or Content-Encoding, a well-formed attempt id,
no query string) here as whole parts.  This module runs the same checks the web layer does: the
token (same cache), the body (same validation), the per-IP limit, ``Play.prepare_answer``, then
queues one EVALSHA with ``ScriptRunner.send``; the reply callback builds the response bytes and
gives them back to the door.  No task, future, Request or Response object is made for it.  Errors,
status codes, bodies and metrics are the web layer's own, through the same functions
(``tests/test_answer_lane.py`` runs the contract's answer cases through both).
"""

from __future__ import annotations

import logging
import re
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol

import orjson
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from contest.appkeys import LIMITER, METRICS, PLAY, RUNNER, SETTINGS
from contest.auth import claims_of_header, require_role
from contest.contests import Contest
from contest.metrics import Metrics
from contest.play import Play
from contest.ratelimit import RateLimiter, client_ip
from contest.redis_client import ReplyWaiter, ScriptRunner
from contest.settings import Settings
from contest.web.errors import error_of, localized_error_body
from contest.web.jsonio import parse_json_object
from contest.web.views.participant import answer_fields
from leaderboard.ratelimit_scripts import RATE_LIMIT
from leaderboard.scripts import Script

__all__ = ["ROUTE", "AnswerLane", "Responder", "is_answer_target", "response_bytes"]

log = logging.getLogger(__name__)

ROUTE = "/api/v1/attempts/{aid}/answers"
_PREFIX = b"/api/v1/attempts/"
_SUFFIX = b"/answers"
# attempt ids are "<cid>.<token>" or "<cid>.<shard>.<token>" (URL-safe); anything else (percent
# escapes, dot segments, a query string) goes to aiohttp, which normalises and routes it
_AID = re.compile(rb"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}\Z")
_PARTICIPANT = ("participant",)
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_SERVER = f"Server: {SERVER_SOFTWARE}\r\n".encode()
_date_cache: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    global _date_cache
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache = (now, b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n")
    return _date_cache[1]


def response_bytes(status: int, body: bytes, headers: dict[str, str] | None = None, *, close: bool = False) -> bytes:
    """One whole HTTP/1.1 response with a JSON body, as aiohttp would have written it."""
    extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items()) if headers else b""
    if close:
        extra += b"Connection: close\r\n"
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s%s\r\n%s" % (
        status, _REASONS.get(status, b"Unknown"), len(body), _date_header(), _SERVER, extra, body)


def is_answer_target(target: bytes) -> bool:
    """Whether a request target is an answer URL the lane can route without aiohttp's normalising."""
    return (target.startswith(_PREFIX) and target.endswith(_SUFFIX)
            and _AID.match(target, len(_PREFIX), len(target) - len(_SUFFIX)) is not None)


class Responder(Protocol):
    """The connection an answer's response goes back to (contest/web/front_door.py)."""

    def lane_respond(self, status: int, body: bytes, headers: dict[str, str] | None) -> None: ...


class _Answer(ReplyWaiter):
    """The ANSWER reply of one lane request: turned into the response and handed to the door."""

    __slots__ = ("contest", "door", "index", "lane", "language", "started")

    def __init__(self, lane: AnswerLane, door: Responder, contest: Contest, index: int, started: float,
                 language: str | None, script: Script, keys: tuple[str, ...], args: tuple[Any, ...]) -> None:
        super().__init__(lane.runner, script, keys, args)
        self.lane = lane
        self.door = door
        self.contest = contest
        self.index = index
        self.started = started
        self.language = language

    def on_reply(self, reply: Any) -> None:
        try:
            result = self.lane.play.answer_result(self.contest, self.index, reply)
        except Exception as exc:
            self.on_error(exc)
            return
        try:
            self.lane.respond(self.door, 200, orjson.dumps(result), None, self.started)
        except Exception:  # never let a client's trouble break the Redis reply loop
            log.exception("answer lane: writing a response failed")

    def on_error(self, exc: BaseException) -> None:
        try:
            self.lane.fail(self.door, exc, self.started, self.language)
        except Exception:
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


class AnswerLane:
    """The app's parts an answer needs, looked up once when the server starts."""

    __slots__ = ("limiter", "max_body", "metrics", "play", "runner", "settings")

    def __init__(self, play: Play, limiter: RateLimiter, metrics: Metrics, settings: Settings,
                 runner: ScriptRunner) -> None:
        self.play = play
        self.limiter = limiter
        self.metrics = metrics
        self.settings = settings
        self.runner = runner
        self.max_body = settings.max_body_bytes

    @classmethod
    def of_app(cls, app: web.Application) -> AnswerLane | None:
        """The lane for a started app, or None for an app without the play parts."""
        try:
            return cls(app[PLAY], app[LIMITER], app[METRICS], app[SETTINGS], app[RUNNER])
        except KeyError:
            return None

    def answer(self, door: Responder, target: bytes, authorization: str, forwarded_for: str | None,
               peer_ip: str | None, body: bytes, language: str | None = None) -> None:
        """Check and queue one answer; its response reaches ``door.lane_respond`` (now or on the reply)."""
        started = time.perf_counter()
        self.metrics.lane_requests += 1
        try:
            claims = require_role(claims_of_header(authorization, self.settings), _PARTICIPANT)
            index, choice = answer_fields(parse_json_object(body))
            limiter = self.limiter
            ip = client_ip(peer_ip, forwarded_for, limiter.networks)
            limiter.refuse_if_blocked("answer_ip", ip)
            counting = limiter.ride_call("answer_ip", ip)
            if counting is not None:
                self.runner.send(RATE_LIMIT, *counting, _Verdict(limiter, ip, self.runner, *counting))
            aid = target[len(_PREFIX):-len(_SUFFIX)].decode("ascii")
            contest, script, keys, args = self.play.prepare_answer(claims, aid, index, choice)
        except Exception as exc:
            self.fail(door, exc, started, language)
            return
        self.runner.send(script, keys, args,
                         _Answer(self, door, contest, index, started, language, script, keys, args))

    def fail(self, door: Responder, exc: BaseException, started: float, language: str | None) -> None:
        """The error in the reader's language (``Accept-Language``), as the web layer words it."""
        error, backend = error_of(exc, "POST", ROUTE)
        if backend:
            self.metrics.errors[backend] += 1
        self.respond(door, error.status, localized_error_body(error, language), error.headers, started)

    def respond(self, door: Responder, status: int, body: bytes, headers: dict[str, str] | None,
                started: float) -> None:
        self.metrics.observe(ROUTE, status, time.perf_counter() - started)
        door.lane_respond(status, body, headers or None)
