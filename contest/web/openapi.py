"""OpenAPI 3.1 generated from the route table, so the document cannot drift from the server."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from contest.web.schema import Route

__all__ = ["OPENAPI_SPEC", "build_spec"]

# the document, built once from the route table by setup_routes and served by /api/openapi.json
OPENAPI_SPEC: web.AppKey[dict[str, Any]] = web.AppKey("openapi_spec")

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message", "details"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}}
_INT_QUERY = {"offset", "limit", "level", "around"}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "tags": [route.tag],
                          "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{route.method} {route.path}").strip("_")}
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in re.findall(r"{(\w+)}", route.path)]
    params += [{"name": name, "in": "query", "required": False,
                "schema": {"type": "integer"} if name in _INT_QUERY else {"type": "string"}} for name in route.query]
    if params:
        op["parameters"] = params
    if route.body is not None:
        if route.body.get("format") == "binary":
            op["requestBody"] = {"required": True, "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": {"file": route.body}}},
                "application/json": {"schema": {}}, "text/csv": {"schema": {"type": "string"}}}}
        else:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
    ok: dict[str, Any] = {"description": "success"}
    if route.content == "application/json":
        ok["content"] = {"application/json": {"schema": route.response}}
    else:
        ok["content"] = {route.content: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(route.status): ok}
    if route.status == 201 and "attempts" in route.path:
        responses["200"] = {"description": "the unfinished attempt, resumed",
                            "content": {"application/json": {"schema": route.response}}}
    statuses = set(route.errors) | {503}
    if route.body is not None:
        statuses |= {400, 413}
    if route.auth:
        statuses |= {401, 403}
    for status in sorted(statuses):
        content: dict[str, Any] = {"application/json": {"schema": _ERROR}}
        if route.content == "text/html":  # a page answers a person: its own 404 is a page too
            content["text/html"] = {"schema": {"type": "string"}}
        responses[str(status)] = {"description": "error", "content": content}
    op["responses"] = responses
    if route.auth:
        op["security"] = [{"bearer": []}]
    return op


def build_spec(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI document of a route table (contest.web.routes.ROUTES)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Quiz contest engine", "version": "1.0.0",
                 "description": "HTTP API of the quiz-competition engine (the contract: docs/api.md)."},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": {"Error": _ERROR}},
    }
