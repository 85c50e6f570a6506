"""JSON in and out: orjson responses and size-limited, type-checked request bodies."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from contest.appkeys import SETTINGS
from contest.web.errors import ApiError

__all__ = ["MAX_JSON_DEPTH", "MAX_JSON_STRING", "json_response", "parse_json_object", "read_body", "read_json"]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The whole raw body, refusing more than ``limit`` bytes (default QUIZ_MAX_BODY_BYTES) with 413.

    Whole means exactly ``Content-Length`` bytes, or every chunk up to the last one, however the
    client's network split them: a phone sends the head and the body of a POST in separate
    segments, and ``content.read(n)`` returns only what has arrived so far.  A body that stops
    short is the front door's to time out (contest/web/front_door.py); nothing here acts on a part.
    """
    if limit is None:
        limit = request.config_dict[SETTINGS].max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    try:
        if length is not None:
            return await request.content.readexactly(length) if length else b""
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)
    except asyncio.IncompleteReadError as exc:  # the client left mid-body: nobody reads this answer
        raise ApiError(400, "bad_request", f"the request body ended after {len(exc.partial)} of "
                                           f"{exc.expected} bytes") from None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes", {"limit": limit})


async def read_json(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object; 400 invalid_json when it is not one."""
    return parse_json_object(await read_body(request), allow_empty=allow_empty)


def parse_json_object(data: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    """``data`` as a JSON object within the depth and string limits; 400 invalid_json otherwise."""
    if not data.strip():
        if allow_empty:
            return {}
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    _check_shape(value)
    return value


# No field of the API nests deeper than a few levels or needs a longer string (a contest's
# description is capped at 10,000 characters); anything beyond is an attack on the parser or on
# whatever walks the value later, refused before any handler sees it.
MAX_JSON_DEPTH = 32
MAX_JSON_STRING = 65_536


def _check_shape(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ApiError(400, "invalid_json", f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
                           {"max_depth": MAX_JSON_DEPTH})
        if isinstance(item, dict):
            for k, v in item.items():
                if len(k) > MAX_JSON_STRING:
                    raise ApiError(400, "invalid_json", "a JSON key is too long", {"max_length": MAX_JSON_STRING})
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str) and len(item) > MAX_JSON_STRING:
            raise ApiError(400, "invalid_json", f"a JSON string is longer than {MAX_JSON_STRING} characters",
                           {"max_length": MAX_JSON_STRING})
