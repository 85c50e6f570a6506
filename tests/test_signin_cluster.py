"""Sign-in by SMS and organizer accounts on a real Valkey cluster: every script in one slot
(a phone's ``{sms:<phone>}`` keys, the ``{quiz}`` users and staff)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster

from contest.web.app import create_app
from tests.fixtures.app import LaneTestServer, admin_headers, bearer, make_settings, seed_contest
from tests.fixtures.cluster import ValkeyCluster
from tests.fixtures.sms_receiver import WEBHOOK_SECRET, SmsReceiver, sms_receiver  # noqa: F401

pytestmark = pytest.mark.cluster


@pytest.fixture
async def sms_cluster_app(valkey_cluster: ValkeyCluster, data_dir: Path,
                          sms_receiver: SmsReceiver) -> AsyncIterator[TestClient]:  # noqa: F811
    valkey_cluster.wait_ok()
    redis = RedisCluster(startup_nodes=valkey_cluster.startup_nodes())
    await redis.flushall(target_nodes=RedisCluster.PRIMARIES)
    await redis.aclose()
    settings = make_settings(valkey_cluster.url, data_dir, redis_cluster=True,
                             sms_provider=f"webhook:{sms_receiver.url}", sms_webhook_secret=WEBHOOK_SECRET,
                             staff_check_s=0.2)
    client = TestClient(LaneTestServer(create_app(settings)))
    await client.start_server()
    yield client
    await client.close()


async def test_sms_sign_in_and_staff_on_a_cluster(sms_cluster_app: TestClient,
                                                  sms_receiver: SmsReceiver) -> None:  # noqa: F811
    client = sms_cluster_app
    seeded = await seed_contest(client)
    user = await seeded.register()
    phone = "13000000001"
    assert (await client.post("/api/v1/auth/sms/send", json={"phone": phone})).status == 202
    assert (await client.post("/api/v1/auth/sms/send", json={"phone": phone})).status == 429
    wrong = await client.post("/api/v1/auth/sms/login", json={"phone": phone, "code": "000000"})
    assert (await wrong.json())["error"]["details"]["tries_left"] == 4
    resp = await client.post("/api/v1/auth/sms/login", json={"phone": phone, "code": sms_receiver.code_for(phone)})
    assert resp.status == 200, await resp.text()
    signed_in = await resp.json()
    assert (signed_in["user_id"], signed_in["name"], signed_in["org_id"]) == (user["user_id"], "张三", "360302002001")
    assert wrong.status == 401

    rows = "phone,name,org_id\n13500000001,组织者,360300\n".encode()
    resp = await client.post("/api/v1/admin/organizers/import", data=rows,
                             headers={**admin_headers(), "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    assert (await client.post("/api/v1/auth/sms/send", json={"phone": "13500000001", "purpose": "staff"})).status == 202
    resp = await client.post("/api/v1/auth/staff/login",
                             json={"phone": "13500000001", "code": sms_receiver.code_for("13500000001", "staff")})
    assert resp.status == 200, await resp.text()
    staff = await resp.json()
    stats = f"/api/v1/admin/contests/{seeded.contest_id}/stats"
    assert (await client.get(stats, headers=bearer(staff["token"]))).status == 200
    resp = await client.patch(f"/api/v1/admin/organizers/{staff['staff_id']}", json={"disabled": True},
                              headers=admin_headers())
    assert resp.status == 200
    for _ in range(100):
        if (await client.get(stats, headers=bearer(staff["token"]))).status == 401:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the disabled organizer's token still works")
    audit = await (await client.get("/api/v1/admin/organizers/audit", headers=admin_headers())).json()
    assert [e["event"] for e in audit["entries"]][:2] == ["disabled", "login"]
