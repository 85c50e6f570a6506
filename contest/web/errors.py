"""The contract's error shape, and the middleware that turns every failure into it.

The domain raises ``contest.errors`` (NotFound, Conflict, DeadlinePassed...) and knows nothing of
HTTP; ``STATUS_OF`` below is the one place that gives each its status.  The views' own HTTP checks
raise ``ApiError`` with a status.  aiohttp's middleware and the answer lane both go through
``error_of``, so a refusal reads the same on both paths.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web, web_protocol
from aiohttp.http_exceptions import HttpProcessingError
from redis.exceptions import AskError, ClusterError, ReadOnlyError, RedisClusterException, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contest.errors import (
    Conflict,
    DeadlinePassed,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from contest.messages import localize_error, prefers_chinese
from contest.metrics import BACKEND_ERROR
from contest.storage.base import StorageUnavailable

__all__ = ["REDIS_UNAVAILABLE", "STATUS_OF", "ApiError", "api_error", "error_body", "error_middleware", "error_of",
           "error_response", "localized_error_body"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Redis (or one cluster master) is away: connection errors, and on a cluster the states of a
# failover (CLUSTERDOWN, TRYAGAIN, MOVED/ASK storms while the slot map settles, writes to a
# demoted master, slots nobody serves).  All mean "retry shortly", never a 500.
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, ClusterError, TryAgainError,
                     AskError, ReadOnlyError, RedisClusterException)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# The status of each domain error (API.md's error table); a subclass takes its nearest listed base's.
STATUS_OF: dict[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    DeadlinePassed: 410,
    RateLimited: 429,
    Unavailable: 503,
}


class ApiError(Exception):
    """An error the client should see: status, snake_case code, human message, details (the web
    layer's own checks; the domain raises contest.errors, mapped by ``api_error``)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.Response(body=error_body(code, message, details), status=status, content_type="application/json",
                        headers=headers)


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> bytes:
    """The contract's error document."""
    document = {"error": {"code": code, "message": message, "details": dict(details or {})}}
    try:
        return orjson.dumps(document)
    except TypeError:
        # details echo what the client sent: an integer past 64 bits or a lone surrogate, which
        # orjson refuses; the standard library writes both (digits, \u escapes), so the 4xx stays one
        return json.dumps(document, default=str).encode()


def api_error(exc: DomainError) -> ApiError:
    """A domain error as the contract's status, code, message, details (and Retry-After)."""
    status = next((STATUS_OF[cls] for cls in type(exc).__mro__ if cls in STATUS_OF), None)
    if status is None:  # a DomainError no class of the table covers: a bug, not the client's doing
        log.error("unmapped domain error %s", type(exc).__name__, exc_info=exc)
        return ApiError(500, "internal_error", "internal error")
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
    return ApiError(status, exc.code, exc.message, exc.details, headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _localized(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason or code
        if exc.status == 413:
            message = "request body is larger than the configured limit"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return _localized(request, ApiError(exc.status, code, message, headers=headers))
    except Exception as exc:
        error, backend = error_of(exc, request.method, request.path)
        if backend:
            request[BACKEND_ERROR] = backend
        return _localized(request, error)


def _localized(request: web.Request, exc: ApiError) -> web.Response:
    """The error in the reader's language (Accept-Language: zh-CN, as the pages send; English
    otherwise), with the form labels beside field names and row errors (contest/messages.py)."""
    chinese = prefers_chinese(request.headers.get("Accept-Language"))
    message, details = localize_error(exc.code, exc.message, exc.details, chinese)
    return error_response(exc.status, exc.code, message, details, exc.headers)


def localized_error_body(exc: ApiError, accept_language: str | None) -> bytes:
    """The error document ``_localized`` sends, for the answer lane, which has no Request."""
    message, details = localize_error(exc.code, exc.message, exc.details, prefers_chinese(accept_language))
    return error_body(exc.code, message, details)


def error_of(exc: BaseException, method: str, path: str) -> tuple[ApiError, str | None]:
    """What the client is told about a failure that is not an ApiError, and which backend a 503
    blames ("redis" / "database", for the metrics).  The web layer and the answer lane share it."""
    if isinstance(exc, ApiError):
        return exc, None
    if isinstance(exc, DomainError) and not isinstance(exc, StorageUnavailable):
        return api_error(exc), None
    if isinstance(exc, HttpProcessingError):  # a body aiohttp cannot parse (garbled multipart, chunking...)
        return ApiError(400, "bad_request", f"malformed request: {exc.message or exc}"[:300]), None
    if isinstance(exc, web_protocol.RequestPayloadError):  # a Content-Encoding the body does not match
        cause = exc.__cause__ or exc.__context__
        detail = getattr(cause, "message", None) or str(cause or exc) or "the body could not be read"
        return ApiError(400, "bad_request", f"malformed request body: {detail}"[:300]), None
    if isinstance(exc, REDIS_UNAVAILABLE):
        log.warning("redis unavailable on %s %s: %r", method, path, exc)
        return ApiError(503, "unavailable", "the leaderboard store is unavailable; nothing was changed",
                        headers={"Retry-After": "1"}), "redis"
    if isinstance(exc, StorageUnavailable):
        log.warning("database unavailable on %s %s: %s", method, path, exc)
        return ApiError(503, "unavailable", "the database is unavailable; nothing was changed",
                        headers={"Retry-After": "2"}), "database"
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return ApiError(500, "internal_error", "internal error"), None
