"""The Route record and the JSON-schema pieces the route tables (routes.py, organizer_routes.py)
are written with; openapi.py turns a table into the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "ADMIN",
    "BOOL",
    "BOOL_OR_NULL",
    "INT",
    "INT_OR_NULL",
    "NUM",
    "PARTICIPANT",
    "STAFF",
    "STR",
    "STR_OR_NULL",
    "Handler",
    "Route",
    "obj",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: tuple[str, ...] = ()  # roles; empty = public
    body: dict[str, Any] | None = None  # JSON schema of the request body
    query: tuple[str, ...] = ()
    response: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    status: int = 200
    errors: tuple[int, ...] = ()
    content: str = "application/json"
    tag: str = "participants"


def obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON schema of an object with these properties."""
    return {"type": "object", "properties": props, "required": list(required)}


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
NUM: dict[str, Any] = {"type": "number"}
STR_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
INT_OR_NULL: dict[str, Any] = {"type": ["integer", "null"]}
BOOL_OR_NULL: dict[str, Any] = {"type": ["boolean", "null"]}

# who may call a route (Route.auth)
PARTICIPANT = ("participant",)
ADMIN = ("admin",)
STAFF = ("admin", "organizer")
