"""Organizer accounts of the units: import (CSV/XLSX, Chinese or English headers, all or nothing),
staff sign-in by SMS, subtree scopes, disabling within a minute on every process, the audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.settings import Settings
from contest.web.app import create_app
from tests.fixtures.app import SAMPLE, LaneTestServer, admin_headers, bearer, make_settings, seed_contest
from tests.fixtures.sms_receiver import WEBHOOK_SECRET, SmsReceiver, sms_receiver  # noqa: F401

CITY, OTHER_CITY, VILLAGE = "360100", "360200", "360101001001"


@pytest.fixture
async def staff_settings(redis_url: str, data_dir: Path, sms_receiver: SmsReceiver) -> Settings:  # noqa: F811
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    return make_settings(redis_url, data_dir, sms_provider=f"webhook:{sms_receiver.url}",
                         sms_webhook_secret=WEBHOOK_SECRET, rate_limits=False, staff_check_s=0.2)


@pytest.fixture
async def staff_client(staff_settings: Settings) -> AsyncIterator[TestClient]:
    client = TestClient(LaneTestServer(create_app(staff_settings)))
    await client.start_server()
    yield client
    await client.close()


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


async def _import(client: TestClient, data: bytes, headers: dict[str, str] | None = None,
                  ctype: str = "text/csv") -> Any:
    return await client.post("/api/v1/admin/organizers/import", data=data,
                             headers={**(headers or admin_headers()), "Content-Type": ctype})


async def _sign_in(client: TestClient, receiver: SmsReceiver, phone: str) -> Any:
    resp = await client.post("/api/v1/auth/sms/send", json={"phone": phone, "purpose": "staff"})
    assert resp.status == 202, await resp.text()
    return await client.post("/api/v1/auth/staff/login",
                             json={"phone": phone, "code": receiver.code_for(phone, "staff")})


async def test_thousand_organizers_sign_in_and_see_only_their_subtree(staff_client: TestClient,
                                                                       sms_receiver: SmsReceiver) -> None:  # noqa: F811
    client = staff_client
    seeded = await seed_contest(client)
    orgs = [row["org_id"] for row in csv.DictReader(io.StringIO((SAMPLE / "orgs.csv").read_text()))]
    people = [(f"135{i:08d}", f"组织者{i}", orgs[i % len(orgs)]) for i in range(1000)]
    rows = [["手机号", "姓名", "单位编号", "角色"]] + [[p, n, o, "组织者"] for p, n, o in people]
    started = time.monotonic()
    resp = await _import(client, _csv(rows))
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"imported": 1000, "updated": 0, "errors": []}
    listed = await (await client.get("/api/v1/admin/organizers", params={"limit": "1000"},
                                     headers=admin_headers())).json()
    assert listed["total"] == 1000

    async def one(phone: str, org_id: str) -> None:
        resp = await _sign_in(client, sms_receiver, phone)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["role"] == "organizer" and body["org_id"] == org_id
        h = bearer(body["token"])
        stats = await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats", headers=h)
        assert stats.status == 200 and (await stats.json())["org_id"] == org_id
        outside = CITY if org_id.startswith("3602") or org_id.startswith("3603") else OTHER_CITY
        if org_id != "360000":
            resp = await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats", params={"org_id": outside},
                                    headers=h)
            assert resp.status == 403, (org_id, outside)
        else:
            resp = await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats", params={"org_id": outside},
                                    headers=h)
            assert resp.status == 200

    for start in range(0, 1000, 50):
        await asyncio.gather(*(one(p, o) for p, _, o in people[start:start + 50]))
    print(f"1000 organizers imported and signed in by SMS in {time.monotonic() - started:.1f} s")
    audit = await (await client.get("/api/v1/admin/organizers/audit", params={"limit": "1000"},
                                    headers=admin_headers())).json()
    assert sum(e["event"] == "login" for e in audit["entries"]) == 1000  # the newest 1000 of 1001 (and the import)
    # the list filters by subtree and by name or phone
    subtree = await (await client.get("/api/v1/admin/organizers", params={"org_id": CITY, "limit": "1000"},
                                      headers=admin_headers())).json()
    assert subtree["total"] == sum(1 for _, _, o in people if o.startswith("3601"))
    found = await (await client.get("/api/v1/admin/organizers", params={"q": "组织者999"},
                                    headers=admin_headers())).json()
    assert [o["phone"] for o in found["organizers"]] == ["13500000999"]


async def test_import_is_all_or_nothing_with_english_xlsx(staff_client: TestClient) -> None:
    client = staff_client
    await seed_contest(client)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["phone", "name", "org_id", "role"])
    sheet.append([13500000001, "Alice", VILLAGE, "organizer"])  # a number cell is fine
    sheet.append(["123456", "Bob", VILLAGE, "organizer"])
    sheet.append(["13500000003", "Carol", "nowhere", "admin"])
    sheet.append(["13500000004", "Dan", VILLAGE, "boss"])
    sheet.append(["+86 135-0000-0001", "Eve", VILLAGE, ""])
    out = io.BytesIO()
    book.save(out)
    resp = await _import(client, out.getvalue(),
                         ctype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert resp.status == 400, await resp.text()
    errors = (await resp.json())["error"]["details"]["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(3, "phone"), (4, "org_id"), (5, "role"), (6, "phone")]
    listed = await (await client.get("/api/v1/admin/organizers", headers=admin_headers())).json()
    assert listed["total"] == 0
    # organizers, not participants: a token of a participant may not import
    user = await (await client.post("/api/v1/auth/register", json={"name": "甲", "phone": "13900000000",
                                                                   "org_id": VILLAGE})).json()
    assert (await _import(client, _csv([["phone", "name", "org_id"]]), bearer(user["token"]))).status == 403


async def test_subtree_admin_manages_only_its_subtree(staff_client: TestClient,
                                                      sms_receiver: SmsReceiver) -> None:  # noqa: F811
    client = staff_client
    seeded = await seed_contest(client)
    rows = [["phone", "name", "org_id", "role"], ["13600000001", "市管理员", CITY, "管理员"],
            ["13600000002", "村组织者", VILLAGE, "organizer"], ["13600000003", "外市组织者", "360201001001", ""]]
    assert (await _import(client, _csv(rows))).status == 200
    resp = await _sign_in(client, sms_receiver, "13600000001")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["role"] == "admin" and body["org_id"] == CITY
    h = bearer(body["token"])
    listed = await (await client.get("/api/v1/admin/organizers", headers=h)).json()
    assert {o["phone"] for o in listed["organizers"]} == {"13600000001", "13600000002"}
    assert (await client.get("/api/v1/admin/organizers", params={"org_id": OTHER_CITY}, headers=h)).status == 403
    resp = await _import(client, _csv([["phone", "name", "org_id"], ["13600000004", "越界", "360201001002"],
                                       ["13600000003", "抢人", VILLAGE]]), h)
    errors = (await resp.json())["error"]["details"]["errors"]
    assert resp.status == 400 and [(e["row"], e["code"]) for e in errors] == [(2, "outside_scope"),
                                                                             (3, "outside_scope")]
    newcomer = _csv([["phone", "name", "org_id"], ["13600000005", "新人", VILLAGE]])
    assert (await _import(client, newcomer, h)).status == 200
    everyone = {o["phone"]: o for o in (await (await client.get("/api/v1/admin/organizers",
                                                                 headers=admin_headers())).json())["organizers"]}
    outside, inside = everyone["13600000003"]["staff_id"], everyone["13600000002"]["staff_id"]
    assert (await client.patch(f"/api/v1/admin/organizers/{outside}", json={"disabled": True},
                               headers=h)).status == 404
    resp = await client.patch(f"/api/v1/admin/organizers/{inside}", json={"disabled": True}, headers=h)
    assert resp.status == 200 and (await resp.json())["disabled"] is True
    bad = await client.patch(f"/api/v1/admin/organizers/{inside}", json={"disabled": "yes"}, headers=h)
    assert bad.status == 400 and "disabled" in (await bad.json())["error"]["details"]["fields"]
    # a refreshed token is still the subtree admin's
    refreshed = await (await client.post("/api/v1/auth/refresh", headers=h)).json()
    assert refreshed["role"] == "admin"
    me = await (await client.get("/api/v1/me", headers=bearer(refreshed["token"]))).json()
    assert (me["role"], me["org_id"]) == ("admin", CITY)
    # elsewhere a subtree admin is an organizer of its subtree, not an admin of everything
    stats = f"/api/v1/admin/contests/{seeded.contest_id}/stats"
    assert (await (await client.get(stats, headers=h)).json())["org_id"] == CITY
    assert (await client.get(stats, params={"org_id": OTHER_CITY}, headers=h)).status == 403
    assert (await client.post("/api/v1/admin/orgs/import", data=b"org_id,name,level\n", headers=h)).status == 403


async def test_disabled_organizer_is_refused_on_every_process(staff_settings: Settings, staff_client: TestClient,
                                                              sms_receiver: SmsReceiver) -> None:  # noqa: F811
    other = TestClient(LaneTestServer(create_app(staff_settings)))  # a second process on the same Redis
    await other.start_server()
    try:
        seeded = await seed_contest(staff_client)
        rows = [["手机", "名字", "机构编号"], ["13700000001", "王组织", CITY]]
        assert (await _import(staff_client, _csv(rows))).status == 200
        body = await (await _sign_in(staff_client, sms_receiver, "13700000001")).json()
        h = bearer(body["token"])
        stats = f"/api/v1/admin/contests/{seeded.contest_id}/stats"
        for c in (staff_client, other):
            assert (await c.get(stats, headers=h)).status == 200
        refreshed = await staff_client.post("/api/v1/auth/refresh", headers=h)
        assert refreshed.status == 200
        h2 = bearer((await refreshed.json())["token"])
        sid = body["staff_id"]
        assert (await staff_client.patch(f"/api/v1/admin/organizers/{sid}", json={"disabled": True},
                                         headers=admin_headers())).status == 200
        disabled_at = time.monotonic()
        for c in (staff_client, other):
            for token in (h, h2):
                while (resp := await c.get(stats, headers=token)).status == 200:
                    assert time.monotonic() - disabled_at < 60
                    await asyncio.sleep(0.05)
                assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthenticated"
        print(f"refused on both processes {time.monotonic() - disabled_at:.2f} s after the PATCH")
        # no code is sent to a disabled account (the answers are those of a real send), and its
        # sign-in is refused
        before = len(sms_receiver.messages)
        redis = aioredis.Redis.from_url(staff_settings.redis_url or "")
        await redis.delete("{sms:13700000001}:cool")
        resp = await staff_client.post("/api/v1/auth/sms/send", json={"phone": "13700000001", "purpose": "staff"})
        assert resp.status == 202 and len(sms_receiver.messages) == before
        again = await staff_client.post("/api/v1/auth/sms/send", json={"phone": "13700000001", "purpose": "staff"})
        assert again.status == 429
        stranger = [await staff_client.post("/api/v1/auth/sms/send", json={"phone": "13799999999", "purpose": "staff"})
                    for _ in range(2)]
        assert [r.status for r in stranger] == [202, 429] and len(sms_receiver.messages) == before
        assert not await redis.exists("{sms:13799999999}:code:staff")
        await redis.aclose()
        # enabled again: the old tokens stay dead, a new sign-in works
        assert (await staff_client.patch(f"/api/v1/admin/organizers/{sid}", json={"disabled": False},
                                         headers=admin_headers())).status == 200
        await asyncio.sleep(0.5)
        assert (await other.get(stats, headers=h)).status == 401
        redis = aioredis.Redis.from_url(staff_settings.redis_url or "")
        await redis.delete("{sms:13700000001}:cool")  # the resend interval passes
        await redis.aclose()
        again = await _sign_in(staff_client, sms_receiver, "13700000001")
        assert again.status == 200
        assert (await other.get(stats, headers=bearer((await again.json())["token"]))).status == 200
        audit = await (await staff_client.get("/api/v1/admin/organizers/audit", headers=admin_headers())).json()
        events = [e["event"] for e in audit["entries"]]
        assert events[:4] == ["login", "enabled", "disabled", "login"] and "import" in events
        login = audit["entries"][0]
        assert login["staff_id"] == sid and login["phone"] == "137****0001" and login["ip"]
    finally:
        await other.close()


async def test_wrong_staff_codes_are_audited(staff_client: TestClient, sms_receiver: SmsReceiver) -> None:  # noqa: F811
    await seed_contest(staff_client)
    assert (await _import(staff_client, _csv([["phone", "name", "org_id"], ["13800000001", "李", CITY]]))).status == 200
    resp = await staff_client.post("/api/v1/auth/staff/login", json={"phone": "13800000001", "code": "000000"})
    assert resp.status == 401
    audit = await (await staff_client.get("/api/v1/admin/organizers/audit", headers=admin_headers())).json()
    assert audit["entries"][0]["event"] == "login_failed"
