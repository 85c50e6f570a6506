"""The whole product on a real 3-master Valkey cluster (tests/fixtures/cluster.py).

- play, boards, org rankings, stats, flusher, sweeper and rebuild through ``RedisCluster``, with a
  4-shard contest serving what a 1-shard one serves;
- kill -9 of a master (with a replica) during play, with QUIZ_ACK_DURABILITY=replica: requests get
  200 or 503 ``unavailable``, nothing acknowledged is lost (in Redis after the failover, and in the
  database), play resumes;
- a failover to a replica that lagged behind (its replication stream dropped by an iptables rule):
  ``replica`` mode loses nothing acknowledged (the answers during the lag were refused with 503),
  ``memory`` mode loses the answers the replica never received, and the test counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from contest.appkeys import FLUSHER, REDIS, RUNNER, STORAGE
from contest.play import parse_attempt_id
from contest.web.app import create_app
from leaderboard import keys
from tests.fixtures.app import LaneTestServer, admin_headers, make_settings, seed_contest
from tests.fixtures.cluster import ValkeyCluster
from tests.shard_scenario import play_both, snapshot

_SLOTS = 16384
BENCH_SHARDS = Path(__file__).resolve().parents[1] / "loadtest" / "bench_shards.py"


def _slot(key: str) -> int:
    """Redis Cluster's CRC16 hash slot of a key with a hash tag (XMODEM CRC, as the spec)."""
    tag = key[key.index("{") + 1 : key.index("}")]
    crc = 0
    for byte in tag.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % _SLOTS


async def _app_client(cluster: ValkeyCluster, data_dir: Path, **overrides: Any) -> TestClient:
    redis = RedisCluster(startup_nodes=cluster.startup_nodes())
    await redis.flushall(target_nodes=RedisCluster.PRIMARIES)
    await redis.aclose()
    settings = make_settings(cluster.url, data_dir, redis_cluster=True, **overrides)
    client = TestClient(LaneTestServer(create_app(settings)))
    await client.start_server()
    return client


@pytest.fixture
async def cluster_app(valkey_cluster: ValkeyCluster, data_dir: Path) -> AsyncIterator[TestClient]:
    valkey_cluster.wait_ok()
    client = await _app_client(valkey_cluster, data_dir)
    yield client
    await client.close()


async def _drained(client: TestClient, within_s: float = 20.0) -> None:
    flusher = client.server.app[FLUSHER]
    deadline = time.monotonic() + within_s
    while await flusher.backlog() > 0:
        assert time.monotonic() < deadline, "the flusher did not drain the streams"
        await asyncio.sleep(0.1)


async def test_sharded_contest_on_the_cluster_and_rebuild(cluster_app: TestClient,
                                                          valkey_cluster: ValkeyCluster) -> None:
    client = cluster_app
    _, _, people = await play_both(client, shards=4, users=18)
    solo = await snapshot(client, "solo", people)
    multi = await snapshot(client, "multi", people)
    for name in solo:
        assert multi[name] == solo[name], name
    # the shards really live on different masters
    owners = {valkey_cluster.master_of_slot(_slot(keys.contest_prefix("multi", s))).port for s in range(4)}
    assert len(owners) >= 2
    # everything reached the database through the per-shard streams and consumer groups
    await _drained(client)
    storage = client.server.app[STORAGE]
    rows = await storage.count_rows("multi")
    assert rows["answers"] == 10 * len(people) and rows["attempts"] == len(people), rows
    # a rebuild over live state first clears the contest's keys on every master (SCAN of all
    # primaries), then restores them: nothing changes
    resp = await client.post("/api/v1/admin/contests/multi/rebuild", headers=admin_headers())
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["deleted_keys"] > 0
    assert await snapshot(client, "multi", people) == multi
    # Redis loses everything: rebuild both contests from the database, on the cluster
    await client.server.app[REDIS].flushall(target_nodes=RedisCluster.PRIMARIES)
    for cid in ("solo", "multi"):
        resp = await client.post(f"/api/v1/admin/contests/{cid}/rebuild", headers=admin_headers())
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["finished"] == len(people)
    assert await snapshot(client, "multi", people) == multi
    assert await snapshot(client, "solo", people) == solo


async def _answer_until_done(client: TestClient, user: dict[str, Any], attempt: dict[str, Any],
                             acked: list[tuple[str, int]], statuses: dict[int, int], stop_at: float) -> None:
    aid = attempt["attempt_id"]
    for q in attempt["questions"]:
        choice: Any = [q["options"][0]["key"]] if q["type"] == "multiple" else q["options"][0]["key"]
        while True:
            assert time.monotonic() < stop_at, "play did not resume after the failover"
            try:
                resp = await client.post(f"/api/v1/attempts/{aid}/answers",
                                         json={"index": q["index"], "choice": choice}, headers=user["headers"])
            except (TimeoutError, OSError):
                continue
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            body = await resp.json()
            if resp.status == 200:
                acked.append((aid, q["index"]))
                break
            assert resp.status == 503 and body["error"]["code"] == "unavailable", (resp.status, body)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)  # a player's pace: play spans the failover


async def test_failover_during_play_loses_nothing_acknowledged(fresh_cluster: ValkeyCluster, data_dir: Path) -> None:
    # Only replica mode promises this: in memory mode an answer the replica had not yet received
    # when its master died is gone (test_failover_with_a_lagging_replica measures it).
    client = await _app_client(fresh_cluster, data_dir, ack_durability="replica")
    try:
        seeded = await seed_contest(client, contest_id="fo", shards=3, attempts_per_day=0, time_limit_s=600)
        users = [await seeded.register(org_id="360302002001", name=f"u{i}") for i in range(18)]
        attempts = []
        for user in users:
            resp = await client.post("/api/v1/contests/fo/attempts", headers=user["headers"])
            assert resp.status == 201, await resp.text()
            attempts.append(await resp.json())
        # the master of the shard that most players landed on dies during play
        by_shard: dict[int, int] = {}
        for a in attempts:
            shard = parse_attempt_id(a["attempt_id"])[1]
            by_shard[shard] = by_shard.get(shard, 0) + 1
        shard = max(by_shard, key=lambda s: by_shard[s])
        victim = fresh_cluster.master_of_slot(_slot(keys.contest_prefix("fo", shard)))
        acked: list[tuple[str, int]] = []
        statuses: dict[int, int] = {}
        stop_at = time.monotonic() + 30
        play = [asyncio.create_task(_answer_until_done(client, u, a, acked, statuses, stop_at))
                for u, a in zip(users, attempts, strict=True)]
        while len(acked) < 36:  # a fifth of the answers are in: kill the master now
            assert time.monotonic() < stop_at, "play did not start"
            await asyncio.sleep(0.01)
        before = len(acked)
        fresh_cluster.kill(victim)
        # Its replica takes over; with no replica of its own it can acknowledge nothing (503) until
        # the operator restarts the dead node, which rejoins as the new master's replica.  Restart
        # it only once the failover has happened: back at once, it would still be the master.
        slot = _slot(keys.contest_prefix("fo", shard))
        await _until(lambda: _server_of(fresh_cluster, slot) not in (None, victim.port), 20, "no failover")
        await asyncio.to_thread(fresh_cluster.wait_ok)
        await asyncio.to_thread(fresh_cluster.restart, victim)
        await asyncio.gather(*play)
        assert len(acked) == len(users) * 10 > before
        assert statuses.get(503, 0) > 0, f"the failover went unnoticed: {statuses}"
        await asyncio.to_thread(fresh_cluster.wait_ok)
        # every acknowledged answer survived in Redis (on the promoted replica)...
        redis = client.server.app[REDIS]
        for aid, index in acked:
            _, s = parse_attempt_id(aid)
            assert await redis.hget(keys.attempt("fo", aid, s), f"a{index}") is not None, (aid, index)
        # ... and play resumes: everyone finishes, and everything reaches the database
        for user, a in zip(users, attempts, strict=True):
            resp = await client.post(f"/api/v1/attempts/{a['attempt_id']}/finish", headers=user["headers"])
            assert resp.status == 200, await resp.text()
        resp = await client.get("/api/v1/contests/fo/leaderboard?limit=200")
        assert (await resp.json())["total"] == len(users)
        await _drained(client, within_s=40)
        answers = {(row["attempt_id"], int(row["idx"])) async for row in client.server.app[STORAGE].load_answers("fo")}
        assert set(acked) <= answers
        metrics = await (await client.get("/metrics")).text()
        assert 'quiz_backend_errors_total{backend="redis"}' in metrics
    finally:
        await client.close()


@contextlib.contextmanager
def _partitioned(cluster: ValkeyCluster, master: int) -> Iterator[None]:
    """Drop every packet of ``master``'s replication stream to its replica (iptables on loopback).

    SIGSTOP of the replica would not do: the kernel keeps buffering the stream and the replica
    catches up when resumed.  The rule matches the master's port and the replica's ephemeral port
    of that one connection, so the cluster bus and clients are untouched."""
    listing = cluster.command(master, "CLIENT", "LIST", "TYPE", "replica").decode()
    ports = re.findall(r"(?:^| )addr=127\.0\.0\.1:(\d+)", listing)
    assert len(ports) == 1, listing
    rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "--sport", str(master), "--dport", ports[0], "-j", "DROP"]
    subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-D", *rule], check=True, capture_output=True)


def _server_of(cluster: ValkeyCluster, slot: int) -> int | None:
    """The port of the master serving ``slot``, None while nobody does (mid-failover)."""
    try:
        return cluster.master_of_slot(slot).port
    except LookupError:
        return None


def _all_agree(cluster: ValkeyCluster, slot: int, port: int) -> bool:
    """Every live node's CLUSTER NODES names the master on ``port`` as the server of ``slot``."""
    for node in cluster.nodes:
        if not node.alive:
            continue
        for line in cluster.command(node.port, "CLUSTER", "NODES").decode().splitlines():
            parts = line.split()
            if "master" not in parts[2] or "fail" in parts[2]:
                continue
            for rng in parts[8:]:
                lo, _, hi = rng.partition("-")
                if lo.isdigit() and int(lo) <= slot <= int(hi or lo) and f":{port}@" not in parts[1]:
                    return False
    return True


async def _until(condition: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def _lost_after_failover(cluster: ValkeyCluster, acked: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The acknowledged answers the promoted master does not hold. Read with a new client, again
    while one still finds the killed master in a slot map (under a loaded machine a node can hand
    out the old map for a moment after all of them agreed on the new one)."""
    deadline = time.monotonic() + 15
    while True:
        redis = RedisCluster(startup_nodes=cluster.startup_nodes())
        try:
            return [(aid, i) for aid, i in acked
                    if await redis.hget(keys.attempt("lag", aid, parse_attempt_id(aid)[1]), f"a{i}") is None]
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
        finally:
            await redis.aclose()
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["replica", "memory"])
async def test_failover_with_a_lagging_replica(mode: str, fresh_cluster: ValkeyCluster, data_dir: Path,
                                               record_property: Any) -> None:
    client = await _app_client(fresh_cluster, data_dir, ack_durability=mode, ack_timeout_ms=300,
                               rate_limits=False)
    tasks: list[asyncio.Task[None]] = []
    try:
        seeded = await seed_contest(client, contest_id="lag", shards=1, attempts_per_day=0, time_limit_s=600)
        users = [await seeded.register(org_id="360302002001", name=f"u{i}") for i in range(12)]
        master = fresh_cluster.master_of_slot(_slot(keys.contest_prefix("lag", 0)))
        replica = fresh_cluster.replica_of(master)
        acked: list[tuple[str, int]] = []
        statuses: dict[int, int] = {}

        async def player(user: dict[str, Any]) -> None:
            while True:
                resp = await client.post("/api/v1/contests/lag/attempts", headers=user["headers"])
                body = await resp.json()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status not in (200, 201):
                    assert resp.status == 503 and body["error"]["code"] == "unavailable", body
                    await asyncio.sleep(0.02)
                    continue
                for q in body["questions"]:
                    choice: Any = [q["options"][0]["key"]] if q["type"] == "multiple" else q["options"][0]["key"]
                    resp = await client.post(f"/api/v1/attempts/{body['attempt_id']}/answers", headers=user["headers"],
                                             json={"index": q["index"], "choice": choice})
                    answer = await resp.json()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    if resp.status == 200:
                        acked.append((body["attempt_id"], q["index"]))
                    else:
                        assert resp.status == 503 and answer["error"]["code"] == "unavailable", answer
                    await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(player(u)) for u in users]
        await _until(lambda: len(acked) >= 40, 30, "play did not get going")
        with _partitioned(fresh_cluster, master.port):
            before, refused = len(acked), statuses.get(503, 0)
            if mode == "replica":  # every write to the lagging pair is refused, none acknowledged
                await _until(lambda: statuses.get(503, 0) >= refused + 24, 30, "no 503 while the replica lags")
            else:  # acknowledged all the same
                await _until(lambda: len(acked) >= before + 40, 30, "no answers while the replica lags")
            during = len(acked) - before
            fresh_cluster.kill(master)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks = []
            # the stale replica becomes the master (by election or by the operator's TAKEOVER)
            deadline = time.monotonic() + 15
            while b"role:master" not in fresh_cluster.command(replica.port, "INFO", "replication"):
                fresh_cluster.command(replica.port, "CLUSTER", "FAILOVER", "TAKEOVER")
                assert time.monotonic() < deadline, "the replica was not promoted"
                await asyncio.sleep(0.1)
        await asyncio.to_thread(fresh_cluster.wait_ok)
        # every node must know the promotion before a new client's slot map can be trusted
        slot = _slot(keys.contest_prefix("lag", 0))
        await _until(lambda: _all_agree(fresh_cluster, slot, replica.port), 20, "the promotion did not spread")
        lost = await _lost_after_failover(fresh_cluster, acked)
        report = (f"{mode}: {len(acked)} answers acknowledged ({during} while the replica lagged), "
                  f"statuses {statuses}, lost after the failover: {len(lost)}")
        record_property("lagging_failover", report)
        print(report)
        if mode == "replica":
            assert not lost, report
            assert during == 0 or statuses.get(503, 0) > refused, report
            # the record: once the flusher has drained the streams (the promoted master's too),
            # every acknowledged answer is in the database, once
            await _drained(client, within_s=40)
            rows = [(r["attempt_id"], int(r["idx"])) async for r in client.server.app[STORAGE].load_answers("lag")]
            assert len(rows) == len(set(rows)) and set(acked) <= set(rows), report
        else:
            assert lost, f"memory mode should lose what the replica never received: {report}"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()


def _migrate_slot(slot: int, source: int, target: int, others: list[int], batch: int) -> dict[str, int]:
    """Move ``slot`` from the master on port ``source`` to the one on ``target`` the way
    `valkey-cli --cluster reshard` does: IMPORTING/MIGRATING, MIGRATE in small batches back to
    back, SETSLOT NODE.  (Paced with pauses between batches instead, the window in which a script's
    keys sit on both nodes, and every call gets TRYAGAIN, outlasts the runner's retry budget: a
    25 s migration paced by load gave 241 503s of 345 requests.)"""
    import redis

    src, dst = redis.Redis(port=source), redis.Redis(port=target)
    try:
        src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command("CLUSTER", "MYID")
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = batches = 0
        while keys_ := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys_)
            moved += len(keys_)
            batches += 1
        for port in (target, source, *others):  # the target first, so the slot is never unowned
            with redis.Redis(port=port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        return {"keys": moved, "batches": batches}
    finally:
        src.close()
        dst.close()


async def _post_until_ok(client: TestClient, path: str, user: dict[str, Any], body: Any,
                         statuses: list[tuple[float, int]]) -> Any:
    """POST until 200/201, as the H5 page retries a 503; any other status fails the test."""
    while True:
        resp = await client.post(path, headers=user["headers"], json=body)
        reply = await resp.json()
        statuses.append((time.monotonic(), resp.status))
        if resp.status in (200, 201):
            return reply
        assert resp.status == 503 and reply["error"]["code"] == "unavailable", (path, resp.status, reply)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["memory", "replica"])
async def test_live_resharding_under_load(mode: str, fresh_cluster: ValkeyCluster, data_dir: Path) -> None:
    """An operator moves a hot contest's slot to another master mid-contest: ASK (with ASKING),
    TRYAGAIN and MOVED are followed inside the runner, so almost nobody sees a 503 (in replica
    mode too, where every batch ends with a WAIT that must not come between ASKING and its call)."""
    client = await _app_client(fresh_cluster, data_dir, rate_limits=False, ack_durability=mode)
    tasks: list[asyncio.Task[None]] = []
    try:
        seeded = await seed_contest(client, contest_id="rs", shards=1, attempts_per_day=0, time_limit_s=600)
        users = [await seeded.register(org_id="360302002001", name=f"u{i}") for i in range(20)]
        acked: list[tuple[str, int]] = []
        finished: dict[str, str] = {}  # attempt -> user
        statuses: list[tuple[float, int]] = []

        async def player(user: dict[str, Any]) -> None:
            while True:
                attempt = await _post_until_ok(client, "/api/v1/contests/rs/attempts", user, None, statuses)
                aid = attempt["attempt_id"]
                for q in attempt["questions"]:
                    choice: Any = [q["options"][0]["key"]] if q["type"] == "multiple" else q["options"][0]["key"]
                    await _post_until_ok(client, f"/api/v1/attempts/{aid}/answers", user,
                                         {"index": q["index"], "choice": choice}, statuses)
                    acked.append((aid, q["index"]))
                await _post_until_ok(client, f"/api/v1/attempts/{aid}/finish", user, None, statuses)
                finished[aid] = user["user_id"]

        tasks = [asyncio.create_task(player(u)) for u in users]
        await _until(lambda: len(acked) >= 100, 30, "play did not get going")
        slot = _slot(keys.contest_prefix("rs", 0))
        source = fresh_cluster.master_of_slot(slot)
        target = next(m for m in fresh_cluster.masters if m.port != source.port)
        others = [m.port for m in fresh_cluster.masters if m.port not in (source.port, target.port)]
        began = time.monotonic()
        migration = await asyncio.to_thread(_migrate_slot, slot, source.port, target.port, others, 1)
        ended = time.monotonic()
        before = len(acked)
        await _until(lambda: len(acked) >= before + 60, 30, "play did not go on after the migration")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        tasks = []
        assert fresh_cluster.master_of_slot(slot).port == target.port
        during = [status for at, status in statuses if began <= at <= ended]
        refused = sum(1 for status in during if status == 503)
        runner = client.server.app[RUNNER]
        report = (f"migrated {migration} in {ended - began:.2f} s; {len(during)} requests during it, {refused} "
                  f"got 503; redirects followed: {runner.asked} ASK, {runner.moved} MOVED, {runner.retried} retries")
        print(report)
        # the load overlapped the migration and the runner worked through it (ASK, TRYAGAIN or
        # MOVED each depend on which keys had moved when a call came; test_runner_follows_ask_
        # tryagain_and_moved goes through each on purpose)
        assert len(during) >= 10 and runner.asked + runner.retried + runner.moved > 0, report
        assert refused < 0.01 * len(during), report
        # nothing acknowledged was lost, and the board equals a recount of the finished attempts
        redis = RedisCluster(startup_nodes=fresh_cluster.startup_nodes())
        try:
            lost = [(aid, i) for aid, i in acked
                    if await redis.hget(keys.attempt("rs", aid, parse_attempt_id(aid)[1]), f"a{i}") is None]
            assert not lost, f"{len(lost)} acknowledged answers lost: {lost[:3]}"
            for aid in finished:
                assert await redis.hget(keys.attempt("rs", aid, 0), "fin") == b"1", aid
        finally:
            await redis.aclose()
        await _drained(client, within_s=40)  # and the record: each acknowledged answer stored once
        storage = client.server.app[STORAGE]
        rows = [(r["attempt_id"], int(r["idx"])) async for r in storage.load_answers("rs")]
        assert len(rows) == len(set(rows)) and set(acked) <= set(rows)
        # the board counts everyone with a finished attempt in the record (a player cancelled
        # after the server finished its attempt but before reading the reply counts too)
        finishers = {r["user_id"] async for r in storage.load_attempts("rs") if r["finished_at"] is not None}
        assert set(finished.values()) <= finishers
        resp = await client.get("/api/v1/contests/rs/leaderboard?limit=200")
        assert (await resp.json())["total"] == len(finishers)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()


async def test_runner_follows_ask_tryagain_and_moved(fresh_cluster: ValkeyCluster) -> None:
    """Each redirect of a slot migration, made to happen on purpose with a two-key script."""
    import redis

    from contest.redis_client import ClusterScripts
    from leaderboard.scripts import LEADERBOARD_PAGE

    client = RedisCluster(startup_nodes=fresh_cluster.startup_nodes())
    runner = ClusterScripts(client, "redis://127.0.0.1:1/0")
    try:
        board, names = keys.board("ask"), keys.names("ask")
        await client.zadd(board, {"u1": 5})
        await client.hset(names, "u1", "甲\torg")
        slot = client.keyslot(board)
        source = fresh_cluster.master_of_slot(slot)
        target = next(m for m in fresh_cluster.masters if m.port != source.port)
        src, dst = redis.Redis(port=source.port), redis.Redis(port=target.port)
        src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command("CLUSTER", "MYID")
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        # one key moved, one not: the script's keys are split, every node answers TRYAGAIN; the
        # call keeps retrying until the second key has moved too, then gets ASK, then runs there
        src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", names)
        call = asyncio.create_task(runner.run(LEADERBOARD_PAGE, (board, names), (0, 10)))
        await _until(lambda: runner.retried > 0, 5, "no TRYAGAIN while the keys were split")
        assert not call.done()
        await asyncio.to_thread(src.execute_command, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000,
                                "KEYS", board)
        reply = await call
        assert reply[0] == 1 and reply[1] == b"u1"
        assert runner.asked >= 1  # ... through ASKING on the target (without it the target says MOVED)
        # the migration ends: the source now answers MOVED, the runner follows and refreshes its map
        for port in [target.port, source.port] + [m.port for m in fresh_cluster.masters
                                                  if m.port not in (source.port, target.port)]:
            with redis.Redis(port=port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        client.nodes_manager.slots_cache[slot] = [n for n in client.get_primaries() if n.port == source.port]
        reply = await runner.run(LEADERBOARD_PAGE, (board, names), (0, 10))
        assert reply[1] == b"u1" and runner.moved == 1
        src.close()
        dst.close()
    finally:
        await runner.aclose()
        await client.aclose()


async def test_cluster_runner_follows_a_moved_slot(cluster_client: RedisCluster) -> None:
    """A stale slot map (as after a reshard) costs one MOVED, a refresh and a retry, not an error."""
    from contest.redis_client import ClusterScripts
    from leaderboard.scripts import LEADERBOARD_PAGE

    board, names = keys.board("moved"), keys.names("moved")
    await cluster_client.zadd(board, {"u1": 5})
    await cluster_client.hset(names, "u1", "甲\torg")
    runner = ClusterScripts(cluster_client, "redis://127.0.0.1:1/0")
    assert (await runner.run(LEADERBOARD_PAGE, (board, names), (0, 10)))[0] == 1
    slot = cluster_client.keyslot(board)
    cache = cluster_client.nodes_manager.slots_cache
    owner = cache[slot][0]
    other = next(n for n in cluster_client.get_primaries() if n.name != owner.name)
    cache[slot] = [other]  # the client now believes another master serves the slot
    reply = await runner.run(LEADERBOARD_PAGE, (board, names), (0, 10))
    assert reply[0] == 1 and reply[1] == b"u1"
    assert runner.refreshes == 1 and cluster_client.nodes_manager.slots_cache[slot][0].name == owner.name
    await runner.aclose()


async def test_bench_shards_runs_against_the_cluster(valkey_cluster: ValkeyCluster, tmp_path: Path) -> None:
    """loadtest/bench_shards.py (docs/capacity.md's measured run) stays runnable: a short run."""
    import json
    import sys

    out = tmp_path / "shards.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCH_SHARDS),
        "--cluster", f"127.0.0.1:{valkey_cluster.masters[0].port}", "--shards", "1,3", "--seconds", "1",
        "--procs", "1", "--concurrency", "8", "--json", str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, output.decode()[-2000:]
    rows = json.loads(await asyncio.to_thread(out.read_text))["rows"]
    assert [r["shards"] for r in rows] == [1, 3] and all(r["answers_per_s"] > 0 for r in rows)
    assert rows[1]["masters_used"] == 3 and len(rows[1]["per_master"]) == 3
