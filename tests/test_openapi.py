"""The published OpenAPI document matches the routes the app actually serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.fixtures.app import admin_headers

PAGES = {"/", "/dashboard/", "/admin/", "/admin/organizers/", "/screen/{cid}"}
METHODS = {"get", "post", "put", "patch", "delete"}
ADMIN_H = admin_headers()


async def spec_of(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    return await resp.json()


def app_routes(client: TestClient) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for route in client.server.app.router.routes():
        if route.method == "HEAD" or isinstance(route.resource, web.StaticResource):
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        assert path, info
        if path in PAGES or path.startswith("/static/"):
            continue
        out.add((path, route.method.lower()))
    return out


async def test_spec_is_openapi_31(client: TestClient) -> None:
    spec = await spec_of(client)
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert isinstance(spec["paths"], dict) and spec["paths"]


async def test_every_app_route_is_in_the_spec_and_back(client: TestClient) -> None:
    spec = await spec_of(client)
    in_spec = {(path, method) for path, ops in spec["paths"].items() for method in ops if method in METHODS}
    served = app_routes(client)
    assert len(served) >= 30
    assert served - in_spec == set(), f"served but undocumented: {sorted(served - in_spec)}"
    assert in_spec - served == set(), f"documented but not served: {sorted(in_spec - served)}"
    for needed in (("/api/v1/auth/register", "post"), ("/api/v1/auth/ticket", "post"),
                   ("/api/v1/contests/{cid}/leaderboard", "get"), ("/api/v1/admin/contests/{cid}/export", "get"),
                   ("/readyz", "get"), ("/api/openapi.json", "get")):
        assert needed in in_spec, needed


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        assert ref.startswith("#/"), ref
        node: Any = spec
        for part in ref[2:].split("/"):
            node = node[part]
        return node
    return schema


def _is_error_schema(spec: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _resolve(spec, schema)
    if "error" not in schema.get("required", []):
        return False
    inner = _resolve(spec, schema["properties"]["error"])
    return set(inner.get("required", [])) >= {"code", "message", "details"} and \
        {"code", "message", "details"} <= set(inner.get("properties", {}))


async def test_every_operation_declares_error_responses(client: TestClient) -> None:
    spec = await spec_of(client)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            assert any(code.startswith("2") for code in responses), where
            errors = {code: r for code, r in responses.items() if code[0] in "45"}
            assert errors, f"{where} declares no error responses"
            for code, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                assert _is_error_schema(spec, schema), f"{where} {code} does not use the error schema"
            if op.get("security"):
                assert "401" in responses and "403" in responses, where
            if "requestBody" in op:
                assert "400" in responses and "413" in responses, where
            if "{" in path:
                assert "404" in responses, where
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, where


async def test_declared_statuses_match_behaviour(client: TestClient) -> None:
    """A few requests whose real status must be among those the spec declares for the operation."""
    spec = await spec_of(client)
    checks = [
        ("post", "/api/v1/auth/register", "/api/v1/auth/register", {"data": b"{x"}),
        ("post", "/api/v1/auth/ticket", "/api/v1/auth/ticket", {"json": {"ticket": "a.b"}}),
        ("get", "/api/v1/me", "/api/v1/me", {}),
        ("get", "/api/v1/contests/{cid}", "/api/v1/contests/nope", {}),
        ("get", "/api/v1/admin/contests/{cid}/stats", "/api/v1/admin/contests/nope/stats", {}),
        ("post", "/api/v1/attempts/{aid}/finish", "/api/v1/attempts/nope/finish", {}),
    ]
    for method, path, url, kwargs in checks:
        resp = await client.request(method.upper(), url, **kwargs)
        assert resp.status >= 400
        assert str(resp.status) in spec["paths"][path][method]["responses"], (method, url, resp.status)


async def test_sign_in_and_organizer_routes_are_documented(client: TestClient) -> None:
    """Issue 14's routes: in the spec with their bodies, and their real statuses declared."""
    spec = await spec_of(client)
    for path, method in (("/api/v1/auth/sms/send", "post"), ("/api/v1/auth/sms/login", "post"),
                         ("/api/v1/auth/refresh", "post"), ("/api/v1/auth/staff/login", "post"),
                         ("/api/v1/admin/organizers/import", "post"), ("/api/v1/admin/organizers", "get"),
                         ("/api/v1/admin/organizers/{sid}", "patch"), ("/api/v1/admin/organizers/audit", "get")):
        assert method in spec["paths"].get(path, {}), (method, path)
    send = spec["paths"]["/api/v1/auth/sms/send"]["post"]
    body = _resolve(spec, send["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) >= {"phone", "purpose"} and "202" in send["responses"]
    register = spec["paths"]["/api/v1/auth/register"]["post"]
    assert "code" in _resolve(spec, register["requestBody"]["content"]["application/json"]["schema"])["properties"]
    checks = [
        ("post", "/api/v1/auth/sms/send", "/api/v1/auth/sms/send", {"json": {"phone": "123456"}}),
        ("post", "/api/v1/auth/sms/send", "/api/v1/auth/sms/send", {"json": {"phone": "13900000000"}}),  # SMS off
        ("post", "/api/v1/auth/sms/login", "/api/v1/auth/sms/login", {"json": {"phone": "13900000000",
                                                                               "code": "123456"}}),
        ("post", "/api/v1/auth/staff/login", "/api/v1/auth/staff/login", {"json": {"phone": "1", "code": "1"}}),
        ("post", "/api/v1/auth/refresh", "/api/v1/auth/refresh", {}),
        ("get", "/api/v1/admin/organizers", "/api/v1/admin/organizers", {}),
        ("patch", "/api/v1/admin/organizers/{sid}", "/api/v1/admin/organizers/nope", {"json": {"disabled": True},
                                                                                      "headers": ADMIN_H}),
    ]
    for method, path, url, kwargs in checks:
        resp = await client.request(method.upper(), url, **kwargs)
        assert resp.status >= 400
        assert str(resp.status) in spec["paths"][path][method]["responses"], (method, url, resp.status)
