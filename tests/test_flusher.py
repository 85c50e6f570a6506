"""The flusher against a real Valkey and both real databases: commit, ack, trim, replay, poison, outage."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from contest.storage import Storage, StorageUnavailable
from contest.storage.base import ANSWER_COLUMNS, START_COLUMNS, event_from_fields, parse_events
from contest.storage.postgres import PostgresStorage
from contest.workers.flusher import GROUP, Flusher, _id_before, consumer_name
from leaderboard import keys
from leaderboard.entries import entry_fields, pack_answer
from tests.fixtures.postgres import PgServer, create_database, start_postgres, stop_postgres
from tests.test_storage import T0, ans_ev, attempt_events, fin_ev, start_ev, user_ev

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "loadtest"))

from bench_flusher import compare

__all__ = ["many_answers", "produce"]

STREAM = keys.events("c1")


async def produce(redis: aioredis.Redis, events: list[dict[str, Any]], stream: str = STREAM, *,
                  packed: bool = True) -> list[bytes]:
    """XADD ``events`` as the scripts write them (answers packed), or all in the older field form."""
    await redis.sadd(keys.streams_registry(), stream)
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(stream, entry_fields(event) if packed else event)
        return await pipe.execute()


def many_answers(n_attempts: int, per_attempt: int = 10) -> list[dict[str, str]]:
    events = []
    for a in range(n_attempts):
        aid, uid = f"a{a:05d}", f"u{a:05d}"
        events.append(start_ev(aid, uid))
        events += [ans_ev(aid, uid, i) for i in range(per_attempt)]
    return events


async def test_flush_once_writes_acks_and_trims(redis_client: aioredis.Redis, storage: Storage) -> None:
    await produce(redis_client, [user_ev("u1"), user_ev("u2")], keys.user_events())
    await produce(redis_client, attempt_events("a1", "u1") + attempt_events("a2", "u2"))
    flusher = Flusher(redis_client, storage, consumer="f1", batch=3)
    assert await flusher.backlog() == 10
    assert await flusher.flush_once() == 10
    assert await storage.count_rows() == {"users": 2, "attempts": 2, "finished": 2, "answers": 4}
    assert await redis_client.xlen(STREAM) == 0 and await redis_client.xlen(keys.user_events()) == 0
    assert await flusher.backlog() == 0
    assert flusher.rows == 10 and flusher.batches == 4 and flusher.last_lag_ms >= 0
    assert await flusher.flush_once() == 0


async def test_trim_keeps_entries_not_yet_committed(redis_client: aioredis.Redis, storage: Storage) -> None:
    await produce(redis_client, many_answers(1, 5))
    # another consumer holds the first 2 entries, unacknowledged (alive, within claim_idle_ms)
    await redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    await redis_client.xreadgroup(GROUP, "other", {STREAM: ">"}, count=2)
    flusher = Flusher(redis_client, storage, consumer="f1")
    assert await flusher.flush_once() == 4
    assert await redis_client.xlen(STREAM) == 6  # trimmed only up to the oldest pending entry
    assert await flusher.backlog() == 2
    await produce(redis_client, [ans_ev("a00000", "u00000", 7)])
    assert await flusher.backlog() == 3


async def test_crash_between_commit_and_ack_replays_once(
    redis_client: aioredis.Redis, storage: Storage
) -> None:
    await produce(redis_client, many_answers(20, 10))  # 220 entries
    # a flusher reads and commits, then dies before XACK
    await redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    [[_, entries]] = await redis_client.xreadgroup(GROUP, "dead", {STREAM: ">"}, count=150)
    await storage.write_events([event_from_fields(f) for _, f in entries])
    survivor = Flusher(redis_client, storage, consumer="alive", batch=100, claim_idle_ms=0)
    assert await survivor.flush_once() == 220
    assert await storage.count_rows("c1") == {"users": 20, "attempts": 20, "finished": 0, "answers": 200}
    assert await survivor.backlog() == 0
    assert await redis_client.xpending(STREAM, GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_poison_entry_is_dead_lettered(redis_client: aioredis.Redis, storage: Storage) -> None:
    bad = ans_ev("a1", "u1", 1) | {"pts": "lots"}
    ids = await produce(
        redis_client, [start_ev("a1", "u1"), ans_ev("a1", "u1", 0), bad, ans_ev("a1", "u1", 2)]
    )
    flusher = Flusher(redis_client, storage, consumer="f1")
    assert await flusher.flush_once() == 3
    assert (await storage.count_rows("c1"))["answers"] == 2
    [(dead_id, fields)] = await redis_client.xrange(keys.dead_letters(STREAM))
    # the dead letter keeps the entry as it was written: one packed field
    assert fields[b"orig_id"] == ids[2] and b"bad value" in fields[b"error"]
    assert fields[b"a"] == pack_answer(bad).encode() and b"\tlots\t" in fields[b"a"]
    assert flusher.dead_lettered == 1 and await flusher.backlog() == 0


async def test_several_flushers_share_the_streams(redis_client: aioredis.Redis, storage: Storage) -> None:
    await produce(redis_client, many_answers(50, 10))
    flushers = [Flusher(redis_client, storage, consumer=f"f{n}", batch=50) for n in range(3)]
    counts = await asyncio.gather(*(f.flush_once() for f in flushers))
    assert sum(counts) == 550
    assert (await storage.count_rows("c1"))["answers"] == 500


async def test_run_drains_and_stops(redis_client: aioredis.Redis, storage: Storage) -> None:
    flusher = Flusher(redis_client, storage, consumer="f1", block_ms=20)
    stop = asyncio.Event()
    task = asyncio.create_task(flusher.run(stop))
    await produce(redis_client, many_answers(5, 4))
    for _ in range(200):
        if (await storage.count_rows("c1"))["answers"] == 20:
            break
        await asyncio.sleep(0.02)
    await produce(redis_client, [ans_ev("a00000", "u00000", 9)])
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (await storage.count_rows("c1"))["answers"] == 21  # the final flush took the last one
    assert flusher.rows == 26 and flusher.errors == 0


@pytest.mark.postgres
async def test_database_outage_keeps_the_backlog(
    redis_client: aioredis.Redis, pg_storage: PostgresStorage, pg_server: PgServer
) -> None:
    flusher = Flusher(redis_client, pg_storage, consumer="f1", batch=40)
    await produce(redis_client, many_answers(2, 9))
    assert await flusher.flush_once() == 20
    stop_postgres(pg_server)
    try:
        await produce(redis_client, many_answers(10, 9))
        with pytest.raises(StorageUnavailable):
            await flusher.flush_once()
        with pytest.raises(StorageUnavailable):
            await pg_storage.ping()
        assert await flusher.backlog() == 100
        # the loop keeps retrying with backoff and counts the errors meanwhile
        stop = asyncio.Event()
        task = asyncio.create_task(flusher.run(stop))
        deadline = time.monotonic() + 10
        while flusher.errors < 2:  # the loop keeps failing and counting, without giving up
            assert time.monotonic() < deadline, flusher.errors
            await asyncio.sleep(0.01)
        assert not task.done()
    finally:
        start_postgres(pg_server)
    for _ in range(300):
        if await flusher.backlog() == 0:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 15)
    assert await flusher.backlog() == 0
    assert await pg_storage.count_rows("c1") == {"users": 10, "attempts": 10, "finished": 0, "answers": 90}


async def test_entries_of_a_dead_local_process_are_taken_over_at_once(
    redis_client: aioredis.Redis, sqlite_storage: Storage
) -> None:
    """After kill -9 and a restart, the new process must not wait claim_idle_ms for its predecessor's batch."""
    await produce(redis_client, many_answers(3, 4))  # 15 entries
    await redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    dead, alive = f"{socket.gethostname()}-{gone.pid}", f"{socket.gethostname()}-{os.getppid()}"
    await redis_client.xreadgroup(GROUP, dead, {STREAM: ">"}, count=10)  # read, never acknowledged
    await redis_client.xreadgroup(GROUP, alive, {STREAM: ">"}, count=2)  # a live process's batch in flight
    flusher = Flusher(redis_client, sqlite_storage, consumer=consumer_name(), claim_idle_ms=60_000)
    assert await flusher.flush_once() == 13
    assert await flusher.backlog() == 2  # the live consumer keeps its entries
    names = {c["name"].decode(): c["pending"] for c in await redis_client.xinfo_consumers(STREAM, GROUP)}
    assert dead not in names and names[alive] == 2 and names[consumer_name()] == 0


async def test_flusher_recovers_when_redis_lost_its_data(redis_client: aioredis.Redis, sqlite_storage: Storage) -> None:
    flusher = Flusher(redis_client, sqlite_storage, consumer="f1")
    await produce(redis_client, many_answers(1, 3))
    assert await flusher.flush_once() == 4
    await redis_client.flushall()  # the group is gone, the flusher still thinks it exists
    await produce(redis_client, many_answers(2, 3)[4:])
    assert await flusher.flush_once() == 4
    assert (await sqlite_storage.count_rows("c1"))["answers"] == 6 and await flusher.backlog() == 0


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "older-form"])
async def test_answers_store_the_same_whichever_path(redis_client: aioredis.Redis, storage: Storage,
                                                     packed: bool) -> None:
    """PostgreSQL COPYs plain answers as text straight from the Redis bytes; answers needing COPY
    escaping or flag normalisation go through parse_events. Both must store what parse_events says,
    for packed answers and for answers in the older field form alike (a stream written before an
    upgrade). A packed value cannot hold a tab or a newline (its separators): those are tested in
    the older form only."""
    plain = [*many_answers(2, 3), start_ev("a9", "u9")]
    changes: list[dict[str, str]] = [{"qid": "q\\1"}, {"qid": "q\r1"}, {"ch": "选项"}, {"ch": ""}]
    if not packed:
        changes += [{"qid": "q\t1"}, {"qid": "q\n1"}, {"ok": "2"}, {"fl": ""}]
    odd = [ans_ev("a9", "u9", i) | change for i, change in enumerate(changes)]
    flusher = Flusher(redis_client, storage, consumer="f1")
    await produce(redis_client, plain, packed=packed)
    assert await flusher.flush_once() == len(plain)
    for event in odd:  # one batch each, so no check hides behind another
        await produce(redis_client, [event], packed=packed)
        assert await flusher.flush_once() == 1
    stored = sorted([tuple(r[c] for c in ANSWER_COLUMNS) async for r in storage.load_answers("c1")])
    assert stored == sorted(parse_events(plain + odd).answers)
    started = sorted([tuple(r[c] for c in START_COLUMNS) async for r in storage.load_attempts("c1")])
    assert started == sorted(parse_events(plain + odd).starts) and len(started) == 3


async def test_packed_entry_of_the_wrong_shape_is_dead_lettered(redis_client: aioredis.Redis,
                                                                 storage: Storage) -> None:
    """A packed answer or start with a value too many or too few is refused by name, never stored
    shifted."""
    good = ans_ev("a1", "u1", 0)
    ids = await produce(redis_client, [start_ev("a1", "u1"), good])
    start = entry_fields(start_ev("a2", "u2"))["s"]
    bad = await produce(redis_client, [{"a": pack_answer(good) + "\textra"},
                                       {"a": pack_answer(good).rsplit("\t", 1)[0]},
                                       {"s": start.rsplit("\t", 1)[0]}], packed=False)
    flusher = Flusher(redis_client, storage, consumer="f1")
    assert await flusher.flush_once() == 2
    dead = await redis_client.xrange(keys.dead_letters(STREAM))
    assert [fields[b"orig_id"] for _, fields in dead] == bad and len(ids) == 2
    assert [fields[b"error"].split(b":")[-1].strip() for _, fields in dead] == [
        b"a packed ans holds 10 tab-separated values, not 11", b"a packed ans holds 10 tab-separated values, not 9",
        b"a packed start holds 9 tab-separated values, not 8"]
    assert (await storage.count_rows("c1"))["answers"] == 1 and await flusher.backlog() == 0


async def test_entry_that_is_not_utf8_is_dead_lettered(redis_client: aioredis.Redis, storage: Storage) -> None:
    bad = ans_ev("a1", "u1", 1) | {"qid": b"q\xff"}
    packed_bad = {"a": pack_answer(ans_ev("a1", "u1", 2) | {"qid": "q@"}).encode().replace(b"@", b"\xff")}
    ids = await produce(redis_client, [start_ev("a1", "u1"), ans_ev("a1", "u1", 0), bad, packed_bad],
                        packed=False)
    flusher = Flusher(redis_client, storage, consumer="f1")
    assert await flusher.flush_once() == 2
    [(_, fields), (_, packed_fields)] = await redis_client.xrange(keys.dead_letters(STREAM))
    assert fields[b"orig_id"] == ids[2] and fields[b"qid"] == b"q\xff" and await flusher.backlog() == 0
    assert packed_fields[b"orig_id"] == ids[3] and packed_fields[b"a"] == packed_bad["a"]


class _KilledBeforeAck(Flusher):
    """A flusher process that dies right after its COMMIT, before its lease's end (or its XACK)
    reaches Redis."""

    async def _end_lease(self, stream: str, start: str) -> None:
        raise RedisConnectionError("killed between COMMIT and LEASE_END")

    async def _ack(self, stream: str, ids: list[Any]) -> None:
        raise RedisConnectionError("killed between COMMIT and XACK")


async def test_crash_between_copy_commit_and_ack_replays_without_duplicates(
    redis_client: aioredis.Redis, storage: Storage
) -> None:
    """The hot path (PostgreSQL: starts and answers COPYed straight into their tables) commits, the
    process dies before XACK; the survivor replays those entries: the COPY collides, the batch is
    redone through the conflict-handling path, and every row is there once."""
    events = many_answers(30, 10)  # 330 entries
    await produce(redis_client, events)
    with pytest.raises(RedisConnectionError):
        await _KilledBeforeAck(redis_client, storage, consumer="dead", batch=100).flush_once()
    assert (await storage.count_rows("c1"))["answers"] > 0  # something was committed, never acknowledged
    survivor = Flusher(redis_client, storage, consumer="alive", batch=100, claim_idle_ms=0)
    assert await survivor.flush_once() == len(events)
    assert await storage.count_rows("c1") == {"users": 30, "attempts": 30, "finished": 0, "answers": 300}
    stored = sorted([tuple(r[c] for c in ANSWER_COLUMNS) async for r in storage.load_answers("c1")])
    assert stored == sorted(parse_events(events).answers)
    assert await survivor.backlog() == 0 and await redis_client.xlen(STREAM) == 0


async def test_start_behind_its_finish_is_stored_whole(redis_client: aioredis.Redis, storage: Storage) -> None:
    """A finish committed before its start leaves a placeholder row: the start's direct COPY
    collides with it, and the start still fills the row in."""
    flusher = Flusher(redis_client, storage, consumer="f1")
    await produce(redis_client, [fin_ev("a1", "u1", score=10)])
    assert await flusher.flush_once() == 1
    await produce(redis_client, [start_ev("a1", "u1"), ans_ev("a1", "u1", 0)])
    assert await flusher.flush_once() == 2
    row = await storage.load_attempt("a1")
    assert row is not None and row["started_at"] == T0 and row["org_path"] == "/p1/c1/x1/"
    assert row["score"] == 10 and row["finished_at"] is not None
    assert (await storage.count_rows("c1"))["answers"] == 1


async def test_trim_follows_the_ack_when_redis_forgot_its_scripts(
    redis_client: aioredis.Redis, storage: Storage
) -> None:
    """The XACK travels with an EVALSHA of the trim; a Redis that lost its scripts (a restart, a
    failover to a replica that never ran it) answers NOSCRIPT, and the trim is loaded and run."""
    flusher = Flusher(redis_client, storage, consumer="f1", batch=50)
    await produce(redis_client, many_answers(10, 9))
    await redis_client.script_flush()
    assert await flusher.flush_once() == 100
    assert await redis_client.xlen(STREAM) == 0 and await flusher.backlog() == 0
    assert (await storage.count_rows("c1"))["answers"] == 90


@pytest.mark.postgres
async def test_flusher_processes_sharing_the_group_commit_each_entry_once(
    redis_client: aioredis.Redis, redis_url: str, pg_server: PgServer
) -> None:
    """1 and 3 flusher processes of their own (``quiz bench``'s compare mode) drain one stream into
    PostgreSQL: the entries they report committed add up to the stream's, none twice, and the
    database holds each answer once (compare raises otherwise), next to a raw COPY of the same rows."""
    result = await compare(redis_url, await create_database(pg_server), 3_000, processes=(1, 3), batch=200)
    assert result.raw_copy > 0 and set(result.flusher) == {1, 3}
    assert min(result.flusher.values()) > 0


async def _read_and_die(redis: aioredis.Redis, storage: Storage, consumer: str, count: int) -> tuple[str, list[Any]]:
    """What a flusher process does before it is killed mid-batch: a lease and its read, no commit."""
    lease, entries = await Flusher(redis, storage, consumer=consumer, batch=count)._read_new(STREAM)
    assert lease is not None and len(entries) == count
    return lease, entries


async def test_leases_of_a_dead_local_process_and_of_an_idle_consumer_are_taken_over(
    redis_client: aioredis.Redis, sqlite_storage: Storage
) -> None:
    """A lease whose process is gone (this host) is taken over at once; one of another host once it
    has been idle claim_idle_ms; a live process's lease is left alone, and its entries stay."""
    events = many_answers(4, 4)  # 20 entries
    await produce(redis_client, events)
    await redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    dead, alive = f"{socket.gethostname()}-{gone.pid}", f"{socket.gethostname()}-{os.getppid()}"
    await _read_and_die(redis_client, sqlite_storage, dead, 5)
    idle_lease, _ = await _read_and_die(redis_client, sqlite_storage, "elsewhere-1", 4)
    _, _, first = (await redis_client.hget(keys.flush_leases(STREAM), idle_lease)).decode().split(" ")
    await redis_client.hset(keys.flush_leases(STREAM), idle_lease, f"elsewhere-1 1000 {first}")  # taken long ago
    alive_lease, alive_entries = await _read_and_die(redis_client, sqlite_storage, alive, 3)
    flusher = Flusher(redis_client, sqlite_storage, consumer=consumer_name(), claim_idle_ms=60_000)
    assert await flusher.flush_once() == 17  # the dead's 5, the idle's 4, the 8 nobody had read
    leases = await redis_client.hgetall(keys.flush_leases(STREAM))
    assert list(leases) == [alive_lease.encode()] and leases[alive_lease.encode()].startswith(alive.encode())
    # the entries under the live lease are still in the stream, whatever was committed after them
    assert [e[0] for e in alive_entries] == [e[0] for e in await redis_client.xrange(STREAM, count=3)]
    # the live process commits its batch after all: everything is stored once, the stream empties
    owner = Flusher(redis_client, sqlite_storage, consumer=alive)
    assert await owner._commit(STREAM, alive_entries, alive_lease) == 3
    assert await redis_client.xlen(STREAM) == 0 and await flusher.backlog() == 0
    assert not await redis_client.exists(keys.flush_leases(STREAM))
    assert (await sqlite_storage.count_rows("c1"))["answers"] == 16


async def test_leases_ended_out_of_order_keep_what_is_not_committed(
    redis_client: aioredis.Redis, storage: Storage
) -> None:
    """The later batch commits first: the trim must keep the earlier batch's entries. Its flusher
    dies; the survivor reads the dead lease's range again, up to the group's last-delivered id
    (over the later batch, already stored: written again, harmlessly), and every row is there once."""
    events = many_answers(3, 4)  # 15 entries
    await produce(redis_client, events)
    await redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    first, first_entries = await _read_and_die(redis_client, storage, "host-a-1", 6)
    later = Flusher(redis_client, storage, consumer="host-b-1", batch=6)
    second, second_entries = await later._read_new(STREAM)
    assert second is not None and await later._commit(STREAM, second_entries, second) == 6
    # nothing after the oldest lease's start is trimmed: the first 6, the later 6, the 3 unread
    kept = [e[0] for e in await redis_client.xrange(STREAM)]
    assert kept[:6] == [e[0] for e in first_entries] and len(kept) == 15
    assert await later.backlog() == 15  # while a lease is out: what the stream holds (an upper bound)
    survivor = Flusher(redis_client, storage, consumer="host-c-1", batch=4, claim_idle_ms=0)
    assert await survivor.flush_once() == 6 + 6 + 3  # the dead range, up to the last read, then the rest
    assert await storage.count_rows("c1") == {"users": 3, "attempts": 3, "finished": 0, "answers": 12}
    stored = sorted([tuple(r[c] for c in ANSWER_COLUMNS) async for r in storage.load_answers("c1")])
    assert stored == sorted(parse_events(events).answers)
    assert await redis_client.xlen(STREAM) == 0 and not await redis_client.exists(keys.flush_leases(STREAM))


async def test_a_read_whose_lease_fails_is_handed_back(redis_client: aioredis.Redis, storage: Storage) -> None:
    """The lease and its read are one transaction, but a transaction runs on past a failed command:
    when the lease cannot be written, what was read goes back to the group and is read again."""
    events = many_answers(2, 4)  # 10 entries
    await produce(redis_client, events)
    await redis_client.set(keys.flush_leases(STREAM), "not a hash")  # every HSET on it fails
    flusher = Flusher(redis_client, storage, consumer="f1", batch=4)
    await redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await flusher._read_new(STREAM)
    [group] = await redis_client.xinfo_groups(STREAM)
    assert group["lag"] == 10  # all ten to be delivered again
    await redis_client.delete(keys.flush_leases(STREAM))
    # the 10 again, and the first of them once more: it was read onto the pending list
    assert await flusher.flush_once() == 11
    stored = sorted([tuple(r[c] for c in ANSWER_COLUMNS) async for r in storage.load_answers("c1")])
    assert stored == sorted(parse_events(events).answers) and await redis_client.xlen(STREAM) == 0


async def test_trim_below_a_lease_that_starts_just_before_a_sequence_zero(redis_client: aioredis.Redis,
                                                                           storage: Storage) -> None:
    """A lease made "just before" an entry of sequence 0 starts at the previous millisecond's
    largest sequence, which no Lua number holds exactly: the trim still keeps that entry on."""
    ids = await produce(redis_client, many_answers(1, 4))
    await redis_client.xgroup_create(STREAM, GROUP, id="$")  # as if all 5 were read already
    third = ids[2].decode()
    await redis_client.xadd(STREAM, {"t": "x"}, id=f"{int(third.split('-')[0]) + 5}-0")  # a later ms, seq 0
    entries = await redis_client.xrange(STREAM)
    start = _id_before(entries[-1][0])
    assert start.endswith("-18446744073709551615")
    await redis_client.hset(keys.flush_leases(STREAM), start, "f9 1")
    flusher = Flusher(redis_client, storage, consumer="f1")
    await flusher._end_lease(STREAM, "")  # trim only
    assert [e[0] for e in await redis_client.xrange(STREAM)] == [entries[-1][0]]


# The trim of the flusher before leases (424a3ff, leaderboard/stream_scripts.py ACK_AND_TRIM with
# no ids): below the oldest pending entry, or past everything delivered when nothing is pending.
_TRIM_BEFORE_LEASES = """
local stream, group = KEYS[1], ARGV[1]
local pending = redis.call('XPENDING', stream, group)
local minid = nil
if tonumber(pending[1]) > 0 then
    minid = pending[2]
else
    for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
        local fields = {}
        for j = 1, #info, 2 do fields[info[j]] = info[j + 1] end
        if fields['name'] == group then
            local ms, seq = string.match(fields['last-delivered-id'], '^(%d+)-(%d+)$')
            if ms and ms ~= '0' then minid = ms .. '-' .. (tonumber(seq) + 1) end
        end
    end
end
if minid then return redis.call('XTRIM', stream, 'MINID', minid) end
return 0
"""


async def test_a_flusher_of_the_release_before_leases_keeps_a_leased_batch(redis_client: aioredis.Redis,
                                                                            storage: Storage) -> None:
    """A rolling upgrade runs old and new flushers side by side. The old one's trim knows only the
    pending list: the first entry of every leased batch is read onto it, so that trim keeps the
    batch whole, and the new flusher that leased it can die without anything being lost."""
    events = many_answers(2, 4)  # 10 entries
    await produce(redis_client, events)
    await redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    _, entries = await _read_and_die(redis_client, storage, "host-a-1", 6)
    assert await redis_client.eval(_TRIM_BEFORE_LEASES, 1, STREAM, GROUP) == 0
    assert [e[0] for e in await redis_client.xrange(STREAM, count=6)] == [e[0] for e in entries]
    survivor = Flusher(redis_client, storage, consumer="host-b-1", claim_idle_ms=0)
    assert await survivor.flush_once() >= 10
    stored = sorted([tuple(r[c] for c in ANSWER_COLUMNS) async for r in storage.load_answers("c1")])
    assert stored == sorted(parse_events(events).answers)
    assert await redis_client.xlen(STREAM) == 0 and (await redis_client.xpending(STREAM, GROUP))["pending"] == 0
