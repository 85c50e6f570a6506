"""QUIZ_ACK_DURABILITY: the setting, the startup check, and replica mode's per-batch WAIT on a real
master and replica (the fault tests are tests/test_power_loss.py and tests/test_cluster.py)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.embedded_redis import EmbeddedValkey
from contest.redis_client import DurabilityError, NotDurable, PipelinedScripts, check_durability
from contest.settings import Settings, SettingsError
from contest.web.app import create_app
from tests.fixtures.app import LaneTestServer, make_settings
from tests.fixtures.play import choice_for, register, seed_custom, start

# what fsync/replica modes require; and a master that starts a replica's sync at once (by default
# it waits 5 s for more replicas to share a diskless sync with)
ALWAYS = ("--appendfsync", "always", "--repl-diskless-sync-delay", "0")


def test_the_setting_is_validated() -> None:
    assert Settings.from_env({"QUIZ_ACK_DURABILITY": "Replica"}).ack_durability == "replica"
    assert Settings.from_env({}).ack_durability == ""  # the CLI picks fsync for the embedded Valkey
    with pytest.raises(SettingsError, match="QUIZ_ACK_DURABILITY"):
        Settings.from_env({"QUIZ_ACK_DURABILITY": "disk"})


@pytest.fixture
def master(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    with EmbeddedValkey(tmp_path / "master", appendonly=True, extra_args=ALWAYS) as server:
        yield server


def _replica_of(master: EmbeddedValkey, path: Path) -> EmbeddedValkey:
    return EmbeddedValkey(path, appendonly=True, extra_args=(*ALWAYS, "--replicaof", "127.0.0.1", str(master.port)))


async def _wait_replicas(client: aioredis.Redis, count: int, within_s: float = 10.0) -> None:
    """Until ``count`` replicas are online (synced), not merely connected: WAIT counts only those."""
    deadline = time.monotonic() + within_s
    while True:
        info = await client.info("replication")
        online = sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                     and v.get("state") == "online")
        if online == count and int(info["connected_slaves"]) == count:
            return
        assert time.monotonic() < deadline, f"expected {count} online replicas: {info}"
        await asyncio.sleep(0.02)


async def test_startup_check_names_what_is_missing(master: EmbeddedValkey, valkey_server: EmbeddedValkey) -> None:
    plain = aioredis.Redis.from_url(valkey_server.url)  # the session's server: AOF off
    good = aioredis.Redis.from_url(master.url)
    try:
        await check_durability(plain, "memory")
        with pytest.raises(DurabilityError, match="appendfsync always"):
            await check_durability(plain, "fsync")
        await check_durability(good, "fsync")
        await check_durability(good, "replica")  # no replica: a warning, not an error
    finally:
        await plain.aclose()
        await good.aclose()


async def test_replica_mode_acknowledges_only_what_a_replica_has(master: EmbeddedValkey, tmp_path: Path) -> None:
    runner = PipelinedScripts(master.url, durability="replica", ack_timeout_ms=200)
    admin = aioredis.Redis.from_url(master.url)
    try:
        # no replica: the writes run, but none is acknowledged; each batch fails after the timeout
        started = time.monotonic()
        results = await asyncio.gather(*(runner.execute("INCR", "n") for _ in range(40)), return_exceptions=True)
        assert all(isinstance(r, NotDurable) for r in results), results
        assert 0.15 < time.monotonic() - started < 3.0
        assert runner.refused >= 1
        replica = _replica_of(master, tmp_path / "replica").start()
        try:
            await _wait_replicas(admin, 1)
            replies = await asyncio.gather(*(runner.execute("INCR", "n") for _ in range(500)))
            assert sorted(int(r) for r in replies) == list(range(41, 541))
            assert runner.writes < 500  # many calls per WAIT (group commit)
        finally:
            replica.kill()  # SIGTERM: a replica here takes 5 s to go (the fixture's stop timeout)
    finally:
        await runner.aclose()
        await admin.aclose()


async def test_replica_mode_answers_503_then_the_retry_lands(master: EmbeddedValkey, tmp_path: Path) -> None:
    """The participant-facing contract: a write no replica confirmed is a 503 ``unavailable``; the
    H5 page retries the same call, which returns the recorded outcome once a replica has it."""
    settings = make_settings(master.url, tmp_path / "data", ack_durability="replica", ack_timeout_ms=200,
                             rate_limits=False)
    replica = _replica_of(master, tmp_path / "replica").start()
    admin = aioredis.Redis.from_url(master.url)
    client = TestClient(LaneTestServer(create_app(settings)))
    try:
        await _wait_replicas(admin, 1)
        await client.start_server()
        cid = await seed_custom(client)
        player = await register(client)
        status, attempt = await start(client, player, cid)
        assert status == 201, attempt
        q = attempt["questions"][0]
        replica.kill()  # the replica is gone (SIGTERM: it takes 5 s to go here)
        await _wait_replicas(admin, 0)
        resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/answers", headers=player.headers,
                                 json={"index": q["index"], "choice": choice_for(q)})
        body = await resp.json()
        assert resp.status == 503 and body["error"]["code"] == "unavailable", body
        replica = _replica_of(master, tmp_path / "replica").start()
        await _wait_replicas(admin, 1)
        resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/answers", headers=player.headers,
                                 json={"index": q["index"], "choice": choice_for(q)})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["correct"] is True
    finally:
        await client.close()
        await admin.aclose()
        replica.kill()


ROOT = Path(__file__).resolve().parents[1]


def _guarantee_table(doc: Path) -> str:
    text = doc.read_text()
    start = text.index("<!-- guarantee-table")
    return text[start:text.index("<!-- /guarantee-table -->", start)]


def test_one_guarantee_table_and_its_proofs_exist() -> None:
    """docs/security.md and deploy/README.md hold the same table, and every test it cites exists."""
    table = _guarantee_table(ROOT / "docs" / "security.md")
    assert _guarantee_table(ROOT / "deploy" / "README.md") == table
    for mode in ("memory", "fsync", "replica"):
        assert f"| `{mode}`" in table
    cited = re.findall(r"`(test_\w+\.py)::(test_\w+)(?:\[[\w-]+\])?`", table)
    assert len(cited) >= 6, cited
    for file, name in cited:
        assert re.search(rf"^(async )?def {name}\(", (ROOT / "tests" / file).read_text(), re.M), (file, name)


pytestmark = pytest.mark.timeout(60)
