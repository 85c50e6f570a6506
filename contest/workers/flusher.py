"""The durable sink: copies the event streams into storage, then releases them.

Order per batch: a lease and the read it covers (one MULTI/EXEC: LEASE_BEGIN, then XREADGROUP
NOACK) -> ``storage.write_raw`` (one transaction) -> LEASE_END (drop the lease, trim). A crash
anywhere before LEASE_END leaves the lease in the stream's lease hash; its range is read again
(XRANGE) by this consumer, or taken over by another (the owner's process is gone, or the lease
sat idle for claim_idle_ms), and written again, harmlessly, because every write is idempotent.
Streams are trimmed only below the oldest entry a lease or the pending-entries list still needs,
so nothing unread or uncommitted is ever dropped (leaderboard/stream_scripts.py says why leases
rather than a pending-entries list: a third of the Valkey work per entry).

A RedisCluster client keeps the pending-entries way (XREADGROUP, XACK); so do entries left pending
by a flusher of an earlier release, which this one still reads, commits and acknowledges.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contest.metrics import BATCH_BUCKETS, LAG_BUCKETS_MS, Histogram
from contest.storage.base import PoisonEvent, Storage, StorageUnavailable
from leaderboard import keys
from leaderboard.stream_scripts import ACK_AND_TRIM, LEASE_BEGIN, LEASE_END, LEASE_TAKE

__all__ = ["GROUP", "Flusher", "consumer_name", "relax_gc"]

log = logging.getLogger(__name__)

GROUP = "flusher"
_MAX_BACKOFF_S = 5.0
_MIN_BACKOFF_S = 0.2
_FINAL_FLUSH_S = 10.0
# batches per stream per flush_once, so one hot stream cannot starve the others
_MAX_ROUNDS = 20
_DEAD_CHECK_S = 5.0  # how often each flusher looks for consumers of this host whose process died

def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw_reader(redis: Any) -> Any:
    """A client on the same connection pool whose XREADGROUP replies are left unparsed.

    redis-py turns every entry into a dict of bytes, which we would then copy into a dict of str:
    at 100,000 entries/s that extra pass is a large share of the flusher's CPU. A client of our
    own (not the caller's: its callbacks stay untouched) hands back hiredis' flat lists instead.
    RedisCluster has no single pool; it keeps the parsed path.
    """
    pool = getattr(redis, "connection_pool", None)
    if pool is None or not isinstance(redis, aioredis.Redis):
        return None
    reader = aioredis.Redis(connection_pool=pool)
    reader.set_response_callback("XREADGROUP", lambda response, **options: response)
    reader.set_response_callback("XRANGE", lambda response, **options: response)
    return reader


def _flat(fields: Any) -> list[Any]:
    """The flat [name, value, ...] list storage.write_raw takes (the parsed path gives dicts)."""
    if isinstance(fields, dict):
        return [x for item in fields.items() for x in item]
    return fields if isinstance(fields, list) else list(fields)


# A raw XREADGROUP reply holds two GC-tracked lists per entry, all alive until the batch commits.
# At 100,000 entries/s Python's default young-generation threshold (700 allocations) runs a
# collection every few milliseconds, each rescanning the survivors: a large share of the
# flusher's CPU (loadtest/README.md, "Flusher"). Collections still run, just less often.
_GC_THRESHOLD = (50_000, 20, 10)


def relax_gc() -> None:
    """Raise the process' GC thresholds to ``_GC_THRESHOLD`` (never lowers one someone set higher)."""
    current = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(current, _GC_THRESHOLD, strict=True)))


def consumer_name() -> str:
    """``<hostname>-<pid>``: unique per process, and tells a flusher on the same host which
    consumers of the group died with their process (see ``Flusher._reclaim_dead``)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _process_gone(consumer: str) -> bool:
    """True when ``consumer`` was named by consumer_name() on this host and its process is gone."""
    host, _, pid = consumer.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, someone else's
        return False
    return False


def _joined(ids: list[Any]) -> bytes | str:
    if all(isinstance(i, bytes) for i in ids):
        return b" ".join(ids)
    return " ".join(_text(i) for i in ids)


def _stream_ms(entry_id: bytes | str) -> int:
    return int(_text(entry_id).split("-", 1)[0])


def _id_key(entry_id: bytes | str) -> tuple[int, int]:
    """A stream id as a number pair, for comparing ids (as strings "9-0" > "10-0")."""
    ms, _, seq = _text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _id_before(entry_id: bytes | str) -> str:
    """The greatest possible id before ``entry_id``: a range starting after it starts at the entry."""
    ms, seq = _id_key(entry_id)
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"


def _lease_parts(value: bytes | str) -> tuple[str, str, list[str]]:
    """A lease's value '<consumer> <ms taken> <first entry id>' as (consumer, ms, [first id])."""
    parts = _text(value).split(" ")
    return parts[0], parts[1] if len(parts) > 1 else "", parts[2:]


def _entries_of(reply: Any) -> list[tuple[Any, Any]]:
    """The entries of an XREADGROUP reply for one stream (RESP2 list or RESP3 map; None: none)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values())))
    [(_name, entries)] = reply
    return list(entries)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Flusher:
    """Drains every stream named in ``{quiz}:streams`` into ``storage`` through group ``flusher``."""

    def __init__(
        self,
        redis: Any,
        storage: Storage,
        *,
        consumer: str,
        batch: int = 5000,
        block_ms: int = 200,
        claim_idle_ms: int = 30000,
    ) -> None:
        self.redis = redis
        self.storage = storage
        self.consumer = consumer
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self._script = redis.register_script(ACK_AND_TRIM.source)
        self._lease_end = redis.register_script(LEASE_END.source)
        self._lease_take = redis.register_script(LEASE_TAKE.source)
        self._groups: set[str] = set()
        # streams where this consumer may own pending entries (start-up, after a failure or a claim)
        self._maybe_pending: set[str] = set()
        self._known: set[str] = set()
        self._reader = _raw_reader(redis)
        self._dead_checked: dict[str, float] = {}  # stream -> monotonic time of the last check
        # figures for /metrics
        self.batches = 0
        self.rows = 0
        self.last_batch_size = 0
        self.last_lag_ms = 0
        self.errors = 0
        self.dead_lettered = 0
        self.batch_sizes = Histogram(BATCH_BUCKETS)  # entries per committed batch (/metrics)
        self.lags = Histogram(LAG_BUCKETS_MS)  # age of a batch's oldest entry at commit, ms

    # discovery ----------------------------------------------------------------------------------
    async def streams(self) -> list[str]:
        # The registrations stream exists from the first sign-up on and is never published like a
        # contest's, so it is always drained, registry or not (it also survives a lost registry).
        names = sorted({keys.user_events(), *(_text(s) for s in await self.redis.smembers(keys.streams_registry()))})
        for name in names:
            if name not in self._known:
                self._known.add(name)
                self._maybe_pending.add(name)
        return names

    async def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)

    # one pass -----------------------------------------------------------------------------------
    async def flush_once(self) -> int:
        """Commit what the streams hold now; returns the number of entries committed."""
        committed = 0
        try:
            streams = await self.streams()
        except BaseException:
            # Redis away (a failover, say) before any stream was read: a lease's end (or an XACK)
            # of the last pass may be lost with the old master on any stream, so each stream's own
            # leases and pending entries are read again next time, instead of waiting
            # claim_idle_ms (30 s) for another flusher to take them over
            self._maybe_pending |= self._known
            raise
        for stream in streams:
            try:
                committed += await self._drain(stream)
            except BaseException:
                # Redis may have delivered entries whose reply never arrived, or lost a lease's end
                # (or an XACK) after the commit: they are leased to (or pending on) this live
                # consumer, which must read them again.
                # The other streams too: the pass stops here, and a failover may have taken an
                # XACK of any of them with the old master
                self._maybe_pending |= self._known
                self._maybe_pending.add(stream)
                raise
        return committed

    async def _drain(self, stream: str) -> int:
        await self._ensure_group(stream)
        try:
            await self._reclaim(stream)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc) and "no such key" not in str(exc):
                raise
            # the stream and its group vanished (Redis lost its data, e.g. FLUSHALL before a
            # rebuild): make the group again, or every later pass would fail right here
            self._groups.discard(stream)
            await self._ensure_group(stream)
        committed = 0
        if stream in self._maybe_pending:
            committed += await self._drain_own(stream)
        return committed + await self._drain_new(stream)

    @property
    def _leasing(self) -> bool:
        """Leases need the raw connection (MULTI/EXEC by hand); RedisCluster keeps the pending list."""
        return self._reader is not None

    async def _drain_own(self, stream: str) -> int:
        """Commit again what this consumer read and did not finish: its leases (read again with
        XRANGE), then entries pending on it from the older way (re-read with id 0)."""
        committed = 0
        if self._leasing:
            leases = await self._leases(stream)
            for start in sorted((s for s, owner in leases.items() if owner == self.consumer), key=_id_key):
                committed += await self._redo_lease(stream, start, leases)
        for _ in range(_MAX_ROUNDS):
            entries = await self._read(stream, "0")
            if entries:
                committed += await self._commit(stream, entries)
            if len(entries) < self.batch:
                self._maybe_pending.discard(stream)
                break
        return committed

    async def _leases(self, stream: str) -> dict[str, str]:
        """The stream's leases: start id -> owning consumer."""
        raw = await self.redis.hgetall(keys.flush_leases(stream))
        return {_text(start): _lease_parts(value)[0] for start, value in raw.items()}

    async def _redo_lease(self, stream: str, start: str, leases: dict[str, str]) -> int:
        """Read a lease's range again and commit it, in batches, then end the lease.

        The range runs from after ``start`` to the next lease's start, or to the group's
        last-delivered id when no later lease is left: never shorter than what was read under it.
        """
        later = [s for s in leases if _id_key(s) > _id_key(start)]
        end = min(later, key=_id_key) if later else await self._last_delivered(stream)
        committed = 0
        cursor = start
        while end is not None and _id_key(cursor) < _id_key(end):
            entries = await self._range(stream, cursor, end)
            if entries:
                committed += await self._store(stream, entries)
            if len(entries) < self.batch:
                break
            cursor = _text(entries[-1][0])
        await self._end_lease(stream, start)
        return committed

    async def _last_delivered(self, stream: str) -> str | None:
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError:
            return None  # the stream is gone: nothing under its leases can be read any more
        return next((_text(g["last-delivered-id"]) for g in groups if _text(g["name"]) == GROUP), None)

    async def _range(self, stream: str, after: str, end: str) -> list[tuple[Any, Any]]:
        if self._reader is not None:
            reply = await self._reader.execute_command("XRANGE", stream, "(" + after, end, "COUNT", self.batch)
        else:
            reply = await self.redis.xrange(stream, "(" + after, end, count=self.batch)
        return list(reply or [])

    async def _drain_new(self, stream: str) -> int:
        """Commit new entries, up to ``storage.parallel_writes`` batches at once.

        Each batch is its own transaction on its own connection, released (or acknowledged) after
        its own commit, so releases may come out of order: harmless, the trim only goes below the
        oldest lease. The next batch is read while the earlier ones are being written. On a
        failure the batches in flight are awaited, then the first error is raised; a failed
        batch's lease stays, and the next pass reads its range again.
        """
        committed = 0
        writers = max(1, int(getattr(self.storage, "parallel_writes", 1)))
        inflight: set[asyncio.Future[Any]] = set()
        reading: asyncio.Future[tuple[str | None, list[tuple[Any, Any]]]] | None = None
        try:
            lease, entries = await self._read_new(stream)
            for round_no in range(_MAX_ROUNDS):
                if not entries:
                    break
                inflight.add(asyncio.ensure_future(self._commit(stream, entries, lease)))
                if len(entries) < self.batch or round_no + 1 == _MAX_ROUNDS:
                    break
                # the next batch travels from Redis while the writers are busy, not after them
                reading = asyncio.ensure_future(self._read_new(stream))
                while len(inflight) >= writers:
                    done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    committed += sum(f.result() for f in done)
                (lease, entries), reading = await reading, None
        finally:
            if reading is not None:  # a commit failed: what this read delivered stays leased to us
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
            results = await asyncio.gather(*inflight, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
            committed += result
        return committed

    async def _reclaim_dead(self, stream: str) -> None:
        """Take over at once what a consumer of this host left pending when its process died.

        After a kill -9 and a restart the new process has a new name; without this its
        predecessor's entries would wait claim_idle_ms (30 s) before anyone commits them.
        Consumers on other hosts are left to the idle-time reclaim below.
        """
        now = time.monotonic()
        if now - self._dead_checked.get(stream, -_DEAD_CHECK_S) < _DEAD_CHECK_S:
            return
        self._dead_checked[stream] = now
        for info in await self.redis.xinfo_consumers(stream, GROUP):
            name = _text(info["name"])
            if name == self.consumer or not _process_gone(name):
                continue
            while rows := await self.redis.xpending_range(stream, GROUP, "-", "+", self.batch, consumername=name):
                await self.redis.xclaim(stream, GROUP, self.consumer, 0, [r["message_id"] for r in rows],
                                        justid=True)
                self._maybe_pending.add(stream)
            # nothing is pending on it any more, so deleting it drops no entry
            await self.redis.xgroup_delconsumer(stream, GROUP, name)
            log.info("flusher %s: took over the entries of %s (process gone) on %s", self.consumer, name, stream)

    async def _reclaim(self, stream: str) -> None:
        """Take over leases, and pending entries, that a dead consumer left (process gone on this
        host: at once; anyone else's: once idle for claim_idle_ms)."""
        await self._reclaim_leases(stream)
        await self._reclaim_dead(stream)
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                stream, GROUP, self.consumer, self.claim_idle_ms, start, count=self.batch
            )
            # not JUSTID: redis-py then drops the cursor; the claimed entries are re-read with id 0
            cursor, claimed, *_ = reply
            start = _text(cursor)
            if claimed:
                self._maybe_pending.add(stream)
                log.info("flusher %s: reclaimed %s idle entries of %s", self.consumer, len(claimed), stream)
            if start == "0-0" or not claimed:
                return

    async def _reclaim_leases(self, stream: str) -> None:
        key = keys.flush_leases(stream)
        raw = await self.redis.hgetall(key)
        now_ms = int(time.time() * 1000)
        for start, value in raw.items():
            owner, taken, first = _lease_parts(value)
            if owner == self.consumer:
                self._maybe_pending.add(stream)  # ours, left by a failed batch: read it again
                continue
            idle = not taken.isdigit() or now_ms - int(taken) >= self.claim_idle_ms
            if not (idle or _process_gone(owner)):
                continue
            if await self._lease_take(keys=[key], args=[start, value, " ".join([self.consumer, str(now_ms), *first])]):
                self._maybe_pending.add(stream)
                log.info("flusher %s: took over the lease of %s after %s on %s", self.consumer, owner,
                         _text(start), stream)

    async def _read_new(self, stream: str) -> tuple[str | None, list[tuple[Any, Any]]]:
        """The next batch and the start of the lease that covers it (None: the pending-list way)."""
        if not self._leasing:
            return None, await self._read(stream, ">")
        assert self._reader is not None
        lease_key = keys.flush_leases(stream)
        owner = f"{self.consumer} {int(time.time() * 1000)}"
        # the first entry onto the pending list (an older flusher's trim keeps the batch for it),
        # the rest without (LEASE_BEGIN says why)
        reads: list[tuple[Any, ...]] = [(b"XREADGROUP", b"GROUP", GROUP, self.consumer, b"COUNT", 1, b"STREAMS",
                                         stream, b">")]
        if self.batch > 1:
            reads.append((b"XREADGROUP", b"GROUP", GROUP, self.consumer, b"COUNT", self.batch - 1, b"NOACK",
                          b"STREAMS", stream, b">"))
        commands: list[tuple[Any, ...]] = [
            (b"MULTI",), (b"EVAL", LEASE_BEGIN.source, 2, stream, lease_key, GROUP, owner), *reads, (b"EXEC",)]
        pool = self._reader.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command([hiredis.pack_command(command) for command in commands])
            for _ in range(len(commands) - 1):  # OK, then QUEUED for each command
                await conn.read_response()
            started, *read_replies = await conn.read_response()
        except BaseException:
            # a reply may still be on its way (or the transaction was left open): never reuse it
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
        failed = next((r for r in read_replies if isinstance(r, Exception)), None)
        if failed is not None:
            if "NOGROUP" not in str(failed):
                raise failed
            # the stream was deleted and recreated (or Redis lost its data): make the group again
            self._groups.discard(stream)
            await self._ensure_group(stream)
            return None, []
        entries = [entry for read in read_replies for entry in _entries_of(read)]
        if isinstance(started, Exception):
            if not entries:
                raise started
            # the lease failed yet the read went through: cover what was read before anything
            # else happens to it, or, failing that, hand it back to the group to be read again
            start = _id_before(entries[0][0])
            try:
                await self.redis.hset(lease_key, start, f"{owner} {_text(entries[0][0])}")
            except ResponseError:
                await self.redis.xgroup_setid(stream, GROUP, start)
                log.warning("flusher %s: no lease on %s (%s): handed back from %s", self.consumer, stream,
                            started, start)
                raise started from None
            log.warning("flusher %s: lease on %s failed (%s); covered it from %s", self.consumer, stream,
                        started, start)
            return start, entries
        if started is None:
            return None, []  # nothing to read, and no lease was made
        start = _text(started)
        if not entries:  # cannot happen in one transaction; a lease with nothing under it just goes
            await self._end_lease(stream, start)
            return None, []
        return start, entries

    async def _read(self, stream: str, start: str) -> list[tuple[Any, Any]]:
        """XREADGROUP the pending-list way: new entries (``>``) or this consumer's pending (``0``)."""
        try:
            if self._reader is not None:
                reply = await self._reader.execute_command(
                    "XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT", self.batch, "STREAMS", stream, start
                )
            else:
                reply = await self.redis.xreadgroup(GROUP, self.consumer, {stream: start}, count=self.batch)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # the stream was deleted and recreated (or Redis lost its data): make the group again
            self._groups.discard(stream)
            await self._ensure_group(stream)
            return []
        if self._reader is None and isinstance(reply, dict):  # RESP3 parsed: {stream: [entries]}
            return list(next(iter(reply.values()))[0])
        return _entries_of(reply)

    async def _store(self, stream: str, entries: list[tuple[Any, Any]]) -> int:
        """Write a batch (nothing acknowledged or released); returns the events written."""
        # ids stay bytes on the raw path. Comprehensions, not a loop of appends: this runs for
        # every entry (fields None: deleted while pending, nothing to write)
        live_ids = [entry[0] for entry in entries if entry[1]]
        if self._reader is not None:  # raw replies: the fields are flat lists already
            events = [entry[1] for entry in entries if entry[1]]
        else:
            events = [_flat(entry[1]) for entry in entries if entry[1]]
        try:
            await self._write(stream, live_ids, events)
        except BaseException:
            self._maybe_pending.add(stream)
            raise
        self.batches += 1
        self.rows += len(events)
        self.last_batch_size = len(events)
        self.last_lag_ms = max(0, int(time.time() * 1000) - _stream_ms(entries[0][0]))
        self.batch_sizes.observe(len(events))
        self.lags.observe(self.last_lag_ms)
        return len(events)

    async def _commit(self, stream: str, entries: list[tuple[Any, Any]], lease: str | None = None) -> int:
        """Write a batch, then end its lease (or, read the pending-list way, acknowledge it)."""
        written = await self._store(stream, entries)
        if lease is not None:
            await self._end_lease(stream, lease)
        else:
            await self._ack(stream, [entry[0] for entry in entries])
        return written

    async def _end_lease(self, stream: str, start: str) -> None:
        await self._lease_end(keys=[stream, keys.flush_leases(stream)], args=[GROUP, start])

    async def _ack(self, stream: str, ids: list[Any]) -> None:
        """XACK ``ids``, then trim the stream below what the group still needs: one round trip.

        On the raw path (ids as bytes, or str with decode_responses) a plain XACK with one argument
        per id, packed by hiredis (C), and the
        ack-and-trim script given no ids, so it only trims: Lua splitting 5,000 ids out of one
        string cost Valkey more than the XACKs themselves, and redis-py would pack 5,000
        arguments in Python. Elsewhere (RedisCluster) the script takes the ids as one string.
        Not atomic, and it need not be: the trim reads the group's state when it runs.
        """
        lease_key = keys.flush_leases(stream)
        if self._reader is None:
            await self._script(keys=[stream, lease_key], args=[GROUP, _joined(ids)])
            return
        pool = self._reader.connection_pool
        conn = await pool.get_connection()
        trimmed = True
        try:
            commands: list[tuple[Any, ...]] = [(b"XACK", stream, GROUP, *ids),
                                                (b"EVALSHA", self._script.sha, 2, stream, lease_key, GROUP, b"")]
            await conn.send_packed_command([hiredis.pack_command(command) for command in commands])
            await conn.read_response()
            try:
                await conn.read_response()
            except NoScriptError:  # Redis restarted or flushed its scripts: loaded by the call below
                trimmed = False
        except BaseException:
            # a reply may still be on its way: this connection must not serve anyone else
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
        if not trimmed:
            await self._script(keys=[stream, lease_key], args=[GROUP, ""])

    async def _write(self, stream: str, ids: list[Any], events: list[list[Any]]) -> None:
        """write_raw, dead-lettering (and acknowledging) each entry the storage calls poison."""
        while events:
            try:
                await self.storage.write_raw(events)
                return
            except PoisonEvent as exc:
                entry_id, event = ids.pop(exc.index), events.pop(exc.index)
                await self._dead_letter(stream, entry_id, event, exc.message)

    async def _dead_letter(self, stream: str, entry_id: Any, event: list[Any], error: str) -> None:
        entry_id = _text(entry_id)
        # bytes as they came: the entry may be poison because it is not valid UTF-8
        names = [_text(k) for k in event[::2]]
        fields = {**dict(zip(names, event[1::2], strict=False)), "error": error, "orig_id": entry_id}
        await self.redis.xadd(keys.dead_letters(stream), fields)
        await self.redis.xack(stream, GROUP, entry_id)
        self.dead_lettered += 1
        log.warning("flusher: dead-lettered %s %s: %s", stream, entry_id, error)

    # the loop -----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Flush until ``stop`` is set, backing off while storage or Redis is down; then a last flush."""
        relax_gc()
        delay = _MIN_BACKOFF_S
        down_since: float | None = None
        while not stop.is_set():
            try:
                committed = await self.flush_once()
            except (StorageUnavailable, RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.errors += 1
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning(
                        "flusher %s: backing off, %s unavailable: %s",
                        self.consumer,
                        "storage" if isinstance(exc, StorageUnavailable) else "redis",
                        exc,
                    )
                await _sleep_unless(stop, delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)
                continue
            except Exception:
                self.errors += 1
                log.exception("flusher %s: unexpected error, retrying in %.1f s", self.consumer, delay)
                await _sleep_unless(stop, delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)
                continue
            if down_since is not None:
                log.info("flusher %s: recovered after %.1f s", self.consumer, time.monotonic() - down_since)
                down_since = None
            delay = _MIN_BACKOFF_S
            if not committed:
                await _sleep_unless(stop, self.block_ms / 1000)
        await self._final_flush()

    async def _final_flush(self) -> None:
        try:
            committed = await asyncio.wait_for(self.flush_once(), _FINAL_FLUSH_S)
            log.info("flusher %s: final flush committed %s entries", self.consumer, committed)
        except TimeoutError:
            log.warning("flusher %s: final flush timed out; the rest stays in the streams", self.consumer)
        except (StorageUnavailable, RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("flusher %s: final flush failed, entries stay in the streams: %s", self.consumer, exc)

    # figures ------------------------------------------------------------------------------------
    async def backlog(self) -> int:
        """Entries not yet committed, over all streams (undelivered lag + delivered but pending)."""
        total = 0
        for stream in await self.streams():
            total += await self._stream_backlog(stream)
        return total

    async def _stream_backlog(self, stream: str) -> int:
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError:
            return 0  # no such stream yet
        for group in groups:
            if _text(group["name"]) != GROUP:
                continue
            lag = group.get("lag")
            if lag is None or await self.redis.exists(keys.flush_leases(stream)):
                # lag is unknown after XDELs, and leased entries are counted nowhere: XLEN counts
                # every entry the trim kept (those of a lease released out of order too)
                return int(await self.redis.xlen(stream))
            return int(lag) + int(group["pending"])
        return int(await self.redis.xlen(stream))  # no group yet: nothing was ever read
