"""Identity: registration, gateway tickets, bearer tokens and the error shape."""

from __future__ import annotations

import gc
import io
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from contest.auth import b64e, issue_token, sign_ticket
from contest.settings import Settings
from contest.web.app import create_app
from tests.fixtures.app import TICKET_SECRET, LaneTestServer, admin_headers, bearer, make_settings, seed_contest

ORG = "360302002001"
REG = "/api/v1/auth/register"
TICKET = "/api/v1/auth/ticket"


async def error_of(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Check the status and that the body is exactly {"error": {code, message, details}}."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/json", text
    body = await resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, body
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    if code is not None:
        assert err["code"] == code, body
    return err


async def test_register_returns_201_with_token(client: TestClient) -> None:
    await seed_contest(client)
    before = int(time.time() * 1000)
    resp = await client.post(REG, json={"name": "张三", "phone": "13800000001", "org_id": ORG})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert {"user_id", "token", "expires_at"} <= set(body)
    assert isinstance(body["user_id"], str) and body["user_id"]
    assert isinstance(body["token"], str) and body["token"]
    assert isinstance(body["expires_at"], int) and body["expires_at"] > before
    me = await client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status == 200
    assert (await me.json())["user_id"] == body["user_id"]


async def test_duplicate_phone_is_409(client: TestClient) -> None:
    await seed_contest(client)
    first = await client.post(REG, json={"name": "张三", "phone": "13800000002", "org_id": ORG})
    assert first.status == 201
    again = await client.post(REG, json={"name": "李四", "phone": "13800000002", "org_id": ORG})
    await error_of(again, 409, "already_registered")


async def test_unknown_org_is_400_naming_org_id(client: TestClient) -> None:
    await seed_contest(client)
    resp = await client.post(REG, json={"name": "张三", "phone": "13800000003", "org_id": "999999"})
    err = await error_of(resp, 400, "validation_failed")
    assert "org_id" in err["details"]["fields"]


async def test_each_bad_field_is_named(client: TestClient) -> None:
    await seed_contest(client)
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"name": "", "phone": "13800000004", "org_id": ORG}, {"name"}),
        ({"name": "张三", "phone": "abcdefghijk", "org_id": ORG}, {"phone"}),
        ({"name": True, "phone": "13800000005", "org_id": ORG}, {"name"}),
        ({"name": 123, "phone": 13800000006, "org_id": ["x"]}, {"name", "phone", "org_id"}),
        ({"name": "", "phone": "letters", "org_id": None}, {"name", "phone", "org_id"}),
        ({}, {"name", "phone", "org_id"}),
        ({"name": "张三", "org_id": ORG}, {"phone"}),
    ]
    for body, bad in cases:
        resp = await client.post(REG, json=body)
        err = await error_of(resp, 400, "validation_failed")
        fields = err["details"].get("fields")
        assert isinstance(fields, dict), (body, err)
        assert bad <= set(fields), (body, err)


async def test_invalid_json_and_non_object(client: TestClient) -> None:
    resp = await client.post(REG, data=b"{not json", headers={"Content-Type": "application/json"})
    await error_of(resp, 400, "invalid_json")
    for raw in (b"[1, 2]", b'"text"', b"42", b"null"):
        resp = await client.post(REG, data=raw, headers={"Content-Type": "application/json"})
        err = await error_of(resp, 400)
        assert err["code"] in ("invalid_json", "validation_failed"), (raw, err)
    resp = await client.post(REG, data=b"", headers={"Content-Type": "application/json"})
    await error_of(resp, 400, "invalid_json")


async def test_oversized_body_is_413(redis_url: str, data_dir: Path, app_settings: Settings) -> None:
    settings = make_settings(redis_url, data_dir, max_body_bytes=2048)
    small = TestClient(LaneTestServer(create_app(settings)))
    await small.start_server()
    try:
        big = {"name": "x" * 5000, "phone": "13800000007", "org_id": ORG}
        resp = await small.post(REG, json=big)
        await error_of(resp, 413, "payload_too_large")
        # no Content-Length (chunked) is refused the same way
        async def gen():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b" " * 1024
        resp = await small.post(REG, data=gen(), headers={"Content-Type": "application/json"})
        await error_of(resp, 413, "payload_too_large")
    finally:
        await small.close()


async def test_body_over_one_mib_is_413_with_defaults(client: TestClient) -> None:
    resp = await client.post(REG, data=io.BytesIO(b"{" + b" " * (2 * 1024 * 1024) + b"}"),
                             headers={"Content-Type": "application/json"})
    await error_of(resp, 413, "payload_too_large")


def _ticket(secret: str = TICKET_SECRET, **over: Any) -> str:
    payload: dict[str, Any] = {"sub": "wx-1", "name": "李四", "org_id": ORG, "exp": int(time.time()) + 60}
    payload.update(over)
    return sign_ticket(secret.encode(), payload)


async def test_ticket_exchange_creates_then_reuses_user(client: TestClient) -> None:
    await seed_contest(client)
    first = await client.post(TICKET, json={"ticket": _ticket()})
    assert first.status == 200, await first.text()
    a = await first.json()
    assert {"user_id", "token", "expires_at"} <= set(a)
    second = await client.post(TICKET, json={"ticket": _ticket()})
    assert second.status == 200, await second.text()
    b = await second.json()
    assert a["user_id"] == b["user_id"]
    other = await client.post(TICKET, json={"ticket": _ticket(sub="wx-2")})
    assert other.status == 200
    assert (await other.json())["user_id"] != a["user_id"]
    me = await client.get("/api/v1/me", headers=bearer(b["token"]))
    assert me.status == 200 and (await me.json())["user_id"] == a["user_id"]


async def test_bad_tickets_are_401(client: TestClient) -> None:
    await seed_contest(client)
    forged = _ticket(secret="not-the-secret")
    await error_of(await client.post(TICKET, json={"ticket": forged}), 401)
    good = _ticket()
    tampered = b64e(b'{"sub":"wx-9","name":"x","org_id":"' + ORG.encode() + b'","exp":9999999999}') \
        + "." + good.split(".")[1]
    await error_of(await client.post(TICKET, json={"ticket": tampered}), 401)
    expired = _ticket(exp=int(time.time()) - 10)
    err = await error_of(await client.post(TICKET, json={"ticket": expired}), 401)
    assert err["code"] in ("token_expired", "unauthenticated")
    for junk in ("garbage", "a.b", ".", "x" * 50 + ".", sign_ticket(TICKET_SECRET.encode(), {"sub": "x"}),
                 sign_ticket(TICKET_SECRET.encode(), {"sub": "x", "name": "n", "org_id": ORG, "exp": "soon"})):
        await error_of(await client.post(TICKET, json={"ticket": junk}), 401)


async def test_participant_endpoint_needs_token(client: TestClient) -> None:
    seeded = await seed_contest(client)
    url = f"/api/v1/contests/{seeded.contest_id}/attempts"
    await error_of(await client.post(url), 401, "unauthenticated")
    await error_of(await client.get("/api/v1/me"), 401, "unauthenticated")
    await error_of(await client.post(url, headers={"Authorization": "Basic abc"}), 401, "unauthenticated")


async def test_forged_and_expired_tokens(client: TestClient, app_settings: Settings) -> None:
    seeded = await seed_contest(client)
    url = f"/api/v1/contests/{seeded.contest_id}/attempts"
    forged, _ = issue_token(b"wrong-secret", user_id="u1", role="participant", org_id=ORG, name="x", ttl_s=3600)
    await error_of(await client.post(url, headers=bearer(forged)), 401, "unauthenticated")
    await error_of(await client.post(url, headers=bearer("not-a-token")), 401, "unauthenticated")
    # an admin-role token signed with the wrong secret must not pass either
    fake_admin, _ = issue_token(b"wrong-secret", user_id="a", role="admin", org_id=None, name="a", ttl_s=3600)
    await error_of(await client.get("/api/v1/admin/questions", headers=bearer(fake_admin)), 401)
    expired, _ = issue_token(app_settings.signing_secret, user_id="u1", role="participant", org_id=ORG,
                             name="x", ttl_s=60, now=time.time() - 10_000)
    await error_of(await client.post(url, headers=bearer(expired)), 401, "token_expired")
    await error_of(await client.get("/api/v1/me", headers=bearer(expired)), 401, "token_expired")


async def test_cached_claims_are_untracked_by_the_gc(client: TestClient, app_settings: Settings) -> None:
    """The token cache holds up to 50,000 entries under load: each must cost the cyclic GC
    nothing (as tracked objects they made its full collections pause the loop 30-60 ms)."""
    from contest import auth

    seeded = await seed_contest(client)
    token, _ = issue_token(app_settings.signing_secret, user_id="gc-u1", role="participant", org_id=ORG,
                           name="缓存", ttl_s=3600)
    url = f"/api/v1/contests/{seeded.contest_id}/attempts"
    first = await client.post(url, headers=bearer(token))
    assert first.status in (200, 201), await first.text()
    gc.collect()
    assert not gc.is_tracked(auth._cache[token])
    # a cache hit gives the same identity: the same attempt comes back for the same user
    again = await client.post(url, headers=bearer(token))
    assert again.status in (200, 201), await again.text()
    assert (await again.json())["attempt_id"] == (await first.json())["attempt_id"]


async def test_participant_token_on_admin_endpoint_is_403(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    for method, url in (("GET", "/api/v1/admin/questions"), ("GET", "/api/v1/admin/contests"),
                        ("POST", "/api/v1/admin/contests"),
                        ("GET", f"/api/v1/admin/contests/{seeded.contest_id}/stats"),
                        ("POST", f"/api/v1/admin/contests/{seeded.contest_id}/rebuild")):
        resp = await client.request(method, url, headers=user["headers"], json={})
        await error_of(resp, 403, "forbidden")
    resp = await client.get("/api/v1/admin/questions", headers=admin_headers())
    assert resp.status == 200


async def test_unknown_path_is_json_404(client: TestClient) -> None:
    for url in ("/api/v1/nope", "/api/v2/contests", "/definitely/not/here"):
        await error_of(await client.get(url), 404, "not_found")
    err = await error_of(await client.get("/api/v1/contests/no-such-contest"), 404, "not_found")
    assert err["code"] == "not_found"


async def test_wrong_method_is_json_error(client: TestClient) -> None:
    resp = await client.delete(REG)
    err = await error_of(resp, 405)
    assert err["code"] == "method_not_allowed"
