"""JSON in and out: orjson responses and size-limited, type-checked request bodies."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from contest.appkeys import SETTINGS
from contest.errors import ApiError

__all__ = ["json_response", "read_body", "read_json"]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The raw body, refusing more than ``limit`` bytes (default QUIZ_MAX_BODY_BYTES) with 413."""
    if limit is None:
        limit = request.config_dict[SETTINGS].max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes",
                       {"limit": limit})
    data = await request.content.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes",
                       {"limit": limit})
    return data


async def read_json(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object; 400 invalid_json when it is not one."""
    data = await read_body(request)
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
    return value
