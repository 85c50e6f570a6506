"""Redis connections: a coalescing script runner for the hot path, redis-py for the rest.

The hot path sends one EVALSHA per request.  ``PipelinedScripts`` keeps one connection per
process and writes the calls of all requests in flight in a single ``write`` per event-loop
turn, or per 16 calls in a busy turn (a pipeline nobody has to build), reading the replies
with hiredis in order: far more requests/s and a far shorter p99 than a handler that awaits a
pooled redis-py ``evalsha`` per request (loadtest/README.md, "Figures behind the code").

On a Redis Cluster (``ClusterScripts``) each master gets such a connection; the
``redis.asyncio.cluster.RedisCluster`` client supplies the slot map and serves everything off the
hot path.  Every script touches one slot (one hash tag), so no script differs.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from leaderboard.scripts import Script, all_scripts

__all__ = ["DURABILITY_MODES", "ClusterScripts", "DurabilityError", "NotDurable", "PipelinedScripts",
           "RedisConnectionError", "ReplyWaiter", "ScriptRunner", "check_durability", "connect_redis", "make_runner"]

log = logging.getLogger(__name__)

Arg = str | bytes | int | float
# Calls queued in one turn before they are written at once instead of at the end of the turn.
# With everything written at the end of the turn, Redis and this process take turns: the whole
# batch is encoded, then executed, then its replies are handled, and each side idles while the
# other works.  Writing every 16 calls lets Redis run the first ones while the rest are built;
# 8 and 12 did about as well, 32 no better than the end of the turn (loadtest/README.md,
# "Figures behind the code").
EAGER_FLUSH = 16


# QUIZ_ACK_DURABILITY (docs/security.md has the guarantee table):
#   memory  - a reply means the script ran in Valkey's memory (and its AOF write(2) is done);
#   fsync   - ... and its AOF record is fsynced on the Valkey host: the server must run
#             `appendfsync always` (checked at startup by check_durability).  Valkey then fsyncs
#             once per event-loop pass, before any reply of that pass is written, so one fsync
#             covers every pipelined call of the pass (group commit).  `WAITAOF 1 0` per batch on
#             an `everysec` server was the other candidate: it measured as fast, but Valkey 8.1.8
#             answers it [1, 0] at once without any fsync reaching the disk (seen through the
#             power-loss filesystem of tests/fixtures/lazyfs.py: every "fsynced" write was lost),
#             so it cannot carry the guarantee;
#   replica - ... and at least one replica has received it: `WAIT 1 <timeout>` is written after
#             every pipelined batch and the batch's replies are held until it answers; a batch no
#             replica confirms in time fails with NotDurable (503).
DURABILITY_MODES = ("memory", "fsync", "replica")


class DurabilityError(RuntimeError):
    """The Redis server is not configured for the durability the service promises (startup)."""


class NotDurable(RedisConnectionError):
    """The batch ran, but no replica confirmed it in time: its calls are not acknowledged.

    A RedisConnectionError, so the web layer answers 503 ``unavailable``; the participant's retry
    of the same idempotent call returns the recorded outcome once a replica has it.
    """


class _Barrier:
    """The waiter of a batch's ``WAIT``: releases (or fails) the replies held before it."""

    __slots__ = ()

    def done(self) -> bool:
        return False

    @staticmethod
    def failure(reply: Any) -> str | None:
        if isinstance(reply, int) and reply >= 1:  # WAIT -> the number of replicas that have it
            return None
        return f"no replica confirmed the write in time (WAIT replied {reply!r})"


class ScriptRunner(Protocol):
    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any: ...

    def send(self, script: Script, keys: Sequence[str], args: Sequence[Arg], waiter: ReplyWaiter) -> None: ...

    async def aclose(self) -> None: ...


class ReplyWaiter:
    """The callback flavour of ``run``: ``send`` queues the call and the reply (or error) is handed
    to ``on_reply`` / ``on_error`` straight from the Redis connection's ``data_received``.

    No future and no task per call: the answer lane (contest/web/answer_lane.py) writes the HTTP
    response from ``on_reply``.  A NOSCRIPT reply (Redis restarted or flushed its script cache)
    is retried once through ``run``, which loads the script.  Both hooks must not raise: they run
    inside the connection's reply loop.
    """

    __slots__ = ("args", "keys", "runner", "script")

    def __init__(self, runner: ScriptRunner, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> None:
        self.runner = runner
        self.script = script
        self.keys = keys
        self.args = args

    def done(self) -> bool:  # the reply loop skips done futures (callers that timed out); never true here
        return False

    def set_result(self, reply: Any) -> None:
        self.on_reply(reply)

    def set_exception(self, exc: BaseException) -> None:
        if isinstance(exc, NoScriptError):
            task = asyncio.ensure_future(self.runner.run(self.script, self.keys, self.args))
            task.add_done_callback(self._retried)
            return
        self.on_error(exc)

    def _retried(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            self.on_error(RedisConnectionError("cancelled"))
        elif (exc := task.exception()) is not None:
            self.on_error(exc)
        else:
            self.on_reply(task.result())

    def on_reply(self, reply: Any) -> None:
        raise NotImplementedError

    def on_error(self, exc: BaseException) -> None:
        raise NotImplementedError


def _send_as_task(runner: ScriptRunner, script: Script, keys: Sequence[str], args: Sequence[Arg],
                  waiter: ReplyWaiter) -> None:
    """``send`` for runners without a callback path of their own (and before a connection exists)."""
    task = asyncio.ensure_future(runner.run(script, keys, args))
    task.add_done_callback(waiter._retried)


def _encode_py(args: Sequence[Arg]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _encode(args: Sequence[Arg]) -> bytes:
    """One RESP command.  hiredis packs it in C, several times faster than the Python loop (a
    visible share of the answer path's CPU: loadtest/README.md, "Figures behind the code"); the
    loop stays for argument types hiredis does not take."""
    try:
        packed: bytes = hiredis.pack_command(
            args if type(args) is tuple else tuple(args)  # type: ignore[arg-type]  # hiredis's stub says a 1-tuple
        )
        return packed
    except TypeError:
        return _encode_py(args)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: PipelinedScripts) -> None:
        self.owner = owner
        self.reader = hiredis.Reader(notEnoughData=False)
        self.transport: asyncio.Transport | None = None
        # Until AUTH and SELECT have succeeded the connection is private to _connect: its replies
        # go to these waiters, and a loss fails only them (the owner's queue is someone else's).
        self.waiters: collections.deque[Any] = collections.deque()  # futures, ReplyWaiters, _Barriers
        self.published = False
        # replies awaiting their batch's WAIT (replica mode); None: replies go out as they come
        self.held: list[tuple[Any, Any]] | None = None
        self.barrier_in_flight = False
        self.needs_barrier = False  # calls were written after the barrier in flight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def publish(self) -> None:
        self.published = True
        self.waiters = self.owner._waiters
        if self.owner._barrier is not None:
            self.held = []

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiters = self.waiters
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            fut = waiters.popleft()
            if type(fut) is _Barrier:
                self._release(fut, reply)
                continue
            if fut.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                reply = NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)
            if self.held is not None:  # fsync/replica mode: the reply waits for its batch's barrier
                self.held.append((fut, reply))
            elif isinstance(reply, Exception):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)

    def _release(self, barrier: _Barrier, reply: Any) -> None:
        failure = barrier.failure(reply)
        self.owner._barrier_answered(self)
        held = self.held or []
        self.held = []  # a new list: data_received's loop picks it up for the next batch
        error = None
        if failure:
            self.owner.refused += 1
            error = NotDurable(f"{failure}: not acknowledged")
        for fut, result in held:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            elif isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.held:  # replies whose barrier never answered: not acknowledged
            error = RedisConnectionError(f"Redis connection lost before the replica wait: {exc or 'closed'}")
            for fut, _ in self.held:
                if not fut.done():
                    fut.set_exception(error)
            self.held = []
        if self.published:
            self.owner._lost(exc)
            return
        error = RedisConnectionError(f"Redis connection lost during AUTH/SELECT: {exc or 'closed'}")
        for fut in self.waiters:
            if not fut.done():
                fut.set_exception(error)


class PipelinedScripts:
    """EVALSHA over one pipelined connection, writes coalesced per event-loop turn."""

    def __init__(self, url: str, *, connect_timeout: float = 2.0, reply_timeout: float = 5.0,
                 durability: str = "memory", ack_timeout_ms: int = 1000) -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {DURABILITY_MODES}, got {durability!r}")
        parsed = urlparse(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.password = unquote(parsed.password) if parsed.password else None
        self.username = unquote(parsed.username) if parsed.username else None
        self.db = int((parsed.path or "/0").lstrip("/") or 0)
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self._protocol: _Protocol | None = None
        self._waiters: collections.deque[Any] = collections.deque()  # futures, ReplyWaiters, _Barriers
        self._buffer: list[bytes] = []
        self._flush_scheduled = False
        self._connecting: asyncio.Lock | None = None
        # One watchdog timer per connection instead of a wait_for() per call (a timer, a future
        # and a callback each: measurable on the hot path); see _watch.
        self._watchdog: asyncio.TimerHandle | None = None
        self._watched: asyncio.Future[Any] | None = None
        self._watched_since = 0.0
        self._timed_out = False
        self.calls = 0
        self.writes = 0
        self.durability = durability
        # replica mode: one WAIT per written batch, its timeout well inside the reply watchdog's
        self.ack_timeout_ms = max(1, min(ack_timeout_ms, int(reply_timeout * 1000 / 2)))
        self._barrier = _encode(("WAIT", 1, self.ack_timeout_ms)) if durability == "replica" else None
        self.refused = 0  # batches no replica confirmed in time
        # Writing every 16 calls keeps Redis busy while the rest are built (EAGER_FLUSH), but with
        # `appendfsync always` every small write Valkey reads becomes an event-loop pass of its own
        # with an fsync of its own.  Written once per turn, one fsync covers the whole turn's
        # calls (the fsync/memory ratio: loadtest/README.md, "Figures behind the code").
        self.eager_flush = EAGER_FLUSH if durability == "memory" else 1 << 30

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None:
                return self._protocol
            loop = asyncio.get_running_loop()
            try:
                transport, protocol = await asyncio.wait_for(
                    loop.create_connection(lambda: _Protocol(self), self.host, self.port),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot connect to Redis at {self.host}:{self.port}: {exc}") from exc
            await self._hello(loop, transport, protocol)
            # Published only now: a call queued before SELECT's reply would run in database 0.
            protocol.publish()
            self._protocol = protocol
            return protocol

    async def _hello(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport,
                     protocol: _Protocol) -> None:
        """AUTH and SELECT in one write on the still-private connection; both replies must be OK."""
        hello: list[bytes] = []
        if self.password:
            auth = ["AUTH", self.username, self.password] if self.username else ["AUTH", self.password]
            hello.append(_encode(auth))
        if self.db:
            hello.append(_encode(["SELECT", self.db]))
        if not hello:
            return
        futures = [loop.create_future() for _ in hello]
        protocol.waiters.extend(futures)
        transport.write(b"".join(hello))
        try:
            replies = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True),
                                             self.connect_timeout)
        except TimeoutError:
            replies = [RedisConnectionError("no reply to AUTH/SELECT in time")]
        failed = [r for r in replies if isinstance(r, BaseException)]
        if failed:
            transport.abort()
            raise RedisConnectionError(
                f"Redis at {self.host}:{self.port} refused AUTH/SELECT: {failed[0]}") from failed[0]

    def _lost(self, exc: Exception | None) -> None:
        self._protocol = None
        self._buffer.clear()
        reason = "Redis did not answer in time" if self._timed_out else f"Redis connection lost: {exc or 'closed'}"
        self._timed_out = False
        error = RedisConnectionError(reason)
        while self._waiters:
            fut = self._waiters.popleft()
            if type(fut) is not _Barrier and not fut.done():
                fut.set_exception(error)

    def _flush(self, scheduled: bool = True) -> None:
        if scheduled:
            self._flush_scheduled = False
        protocol = self._protocol
        if not self._buffer or protocol is None or protocol.transport is None:
            return
        if self._barrier is not None:
            # Group commit: one replica wait covers the whole batch.  While one is in
            # flight, Valkey holds this connection's later commands anyway (a blocked client runs
            # nothing more), so they are sent now and share the next barrier, sent when the
            # current one answers: the batch grows with the replicas' latency.
            if protocol.barrier_in_flight:
                protocol.needs_barrier = True
            else:
                self._append_barrier(protocol)
        protocol.transport.write(b"".join(self._buffer))
        self._buffer.clear()
        self.writes += 1

    def _append_barrier(self, protocol: _Protocol) -> None:
        assert self._barrier is not None
        self._buffer.append(self._barrier)
        self._waiters.append(_Barrier())  # a new object per batch: the watchdog tells heads apart by identity
        protocol.barrier_in_flight = True

    def _barrier_answered(self, protocol: _Protocol) -> None:
        protocol.barrier_in_flight = False
        if protocol.needs_barrier and protocol.transport is not None:
            protocol.needs_barrier = False
            self._append_barrier(protocol)
            # the buffer may hold calls of this turn not yet written: they go with it
            protocol.transport.write(b"".join(self._buffer))
            self._buffer.clear()
            self.writes += 1

    def _check_open(self, protocol: _Protocol) -> None:
        """Refuse a connection on its way out (the next call opens a new one)."""
        if protocol.transport is None or protocol.transport.is_closing():
            self._protocol = None
            raise RedisConnectionError("Redis connection is closing")

    async def _send(self, payload: bytes) -> Any:
        self._check_open(self._protocol or await self._connect())
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue(loop, payload, fut)
        return await fut

    def _queue(self, loop: asyncio.AbstractEventLoop, payload: bytes, waiter: Any) -> None:
        """Queue one command and its reply's waiter (a future, or a ReplyWaiter) for this turn's write."""
        self._waiters.append(waiter)
        self._buffer.append(payload)
        if len(self._buffer) >= self.eager_flush:
            self._flush(scheduled=False)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        self.calls += 1
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.reply_timeout / 4, self._watch)

    def _watch(self) -> None:
        """Runs every reply_timeout/4 while replies are awaited.

        Replies come in order, so only the oldest waiter matters: if the same one has been at the
        head for reply_timeout, Redis hangs or the stream is out of step, and the connection is
        dropped (every waiter fails with RedisConnectionError; the next call reconnects).
        """
        self._watchdog = None
        if not self._waiters:
            self._watched = None
            return
        head = self._waiters[0]
        loop = asyncio.get_running_loop()
        now = loop.time()
        if head is not self._watched:
            self._watched, self._watched_since = head, now
        elif now - self._watched_since >= self.reply_timeout:
            self._watched = None
            protocol = self._protocol
            if protocol is not None and protocol.transport is not None:
                self._timed_out = True
                protocol.transport.abort()
            return
        self._watchdog = loop.call_later(self.reply_timeout / 4, self._watch)

    async def execute(self, *args: Arg) -> Any:
        return await self._send(_encode(args))

    def send(self, script: Script, keys: Sequence[str], args: Sequence[Arg], waiter: ReplyWaiter) -> None:
        """Queue one EVALSHA whose reply goes to ``waiter`` (see ReplyWaiter), in this turn's write."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            _send_as_task(self, script, keys, args, waiter)  # run() connects (or fails) properly
            return
        self._queue(asyncio.get_running_loop(), _encode(("EVALSHA", script.sha, len(keys), *keys, *args)), waiter)

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        payload = _encode(["EVALSHA", script.sha, len(keys), *keys, *args])
        try:
            return await self._send(payload)
        except NoScriptError:
            await self.execute("SCRIPT", "LOAD", script.source)
            return await self._send(payload)

    async def run_asking(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """EVALSHA right after ASKING, for a slot being imported here (an ASK redirect).

        ASKING applies to the next command on the connection only, so both go as one buffer entry:
        nothing (another call, a replica-mode WAIT) can be written between them."""
        payload = _encode(["EVALSHA", script.sha, len(keys), *keys, *args])
        for attempt in (0, 1):
            self._check_open(self._protocol or await self._connect())
            loop = asyncio.get_running_loop()
            asking: asyncio.Future[Any] = loop.create_future()
            fut: asyncio.Future[Any] = loop.create_future()
            self._waiters.append(asking)
            self._queue(loop, _ASKING + payload, fut)
            try:
                await asking
                return await fut
            except NoScriptError:
                if attempt:
                    raise
                await self.execute("SCRIPT", "LOAD", script.source)
        raise AssertionError("unreachable")  # pragma: no cover

    async def load_scripts(self) -> None:
        for script in all_scripts():
            await self.execute("SCRIPT", "LOAD", script.source)

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        protocol = self._protocol
        self._protocol = None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()


class RedisPyScripts:
    """The same interface over a redis-py client: RedisCluster routes each call by its keys' slot."""

    def __init__(self, client: aioredis.Redis | RedisCluster) -> None:
        self.client = client
        self.calls = 0

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        self.calls += 1
        try:
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.client.script_load(script.source)
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)

    def send(self, script: Script, keys: Sequence[str], args: Sequence[Arg], waiter: ReplyWaiter) -> None:
        _send_as_task(self, script, keys, args, waiter)

    async def aclose(self) -> None:
        """The cluster client is closed by its owner."""


_ASKING = _encode(("ASKING",))
# A cluster that is moving a slot or failing over answers these instead of running the script.
_RETRY_LATER = ("TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "LOADING")
# How long one call keeps retrying them before the error goes up (503 ``unavailable``): a
# migration's TRYAGAIN lasts until the last of the script's keys has moved (small MIGRATE batches:
# tens of ms), a failover's CLUSTERDOWN about node-timeout + 1-2 s; the client retries after that.
RETRY_BUDGET_S = 2.0


class ClusterScripts:
    """EVALSHA on a Redis Cluster through one coalescing ``PipelinedScripts`` per master.

    Every script's keys share one hash tag, so the slot of the first key names the master; the
    slot map is the RedisCluster client's.  A redirect means the script did not run, and is
    followed inside the runner, so a live resharding costs callers latency, not errors:
    - ``MOVED slot host:port``: the slot has moved for good; the call goes to that node and the
      slot map is refreshed for the calls after it;
    - ``ASK slot host:port``: the slot is being migrated and these keys are already on the target;
      the call is sent there once, right after ``ASKING`` (run_asking);
    - ``TRYAGAIN`` (a script whose keys are split between the two nodes mid-migration),
      ``CLUSTERDOWN``/``MASTERDOWN``/``READONLY``/``LOADING`` (a failover): retried with a short
      backoff, refreshing the map, for up to RETRY_BUDGET_S; then the error goes up (503
      ``unavailable``).  A lost connection also refreshes the
    map (the next calls find the promoted replica) but is not retried: whether the script ran is
    unknown, and the caller's retry is safe because every hot-path script is idempotent.
    """

    def __init__(self, client: RedisCluster, url: str, *, reply_timeout: float = 5.0,
                 durability: str = "memory", ack_timeout_ms: int = 1000) -> None:
        self.client = client
        self.durability = durability
        self.ack_timeout_ms = ack_timeout_ms
        parsed = urlparse(url)
        self._auth = ""
        if parsed.password:
            self._auth = f"{parsed.username or ''}:{parsed.password}@"
        self.reply_timeout = reply_timeout
        self._runners: dict[str, PipelinedScripts] = {}
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0
        self.calls = 0
        self.refreshes = 0
        self.moved = self.asked = self.retried = 0  # redirects followed (resharding, failovers)

    @property
    def writes(self) -> int:
        return sum(r.writes for r in self._runners.values())

    @property
    def refused(self) -> int:
        return sum(r.refused for r in self._runners.values())

    def _runner_for(self, key: str) -> PipelinedScripts:
        node = self.client.get_node_from_key(key)
        if node is None:  # pragma: no cover - get_node_from_key raises SlotNotCoveredError instead
            raise RedisConnectionError(f"no master serves the slot of {key!r}")
        runner = self._runners.get(node.name)
        if runner is None:
            runner = PipelinedScripts(f"redis://{self._auth}{node.host}:{node.port}/0",
                                      reply_timeout=self.reply_timeout, durability=self.durability,
                                      ack_timeout_ms=self.ack_timeout_ms)
            self._runners[node.name] = runner
        return runner

    async def _refresh(self) -> None:
        """Reload the slot map once for every caller that hit the same change."""
        loop = asyncio.get_running_loop()
        if self._refreshing is None or self._refreshing.done():
            if loop.time() - self._refreshed_at < 0.1:
                return  # just refreshed: the cluster itself has not settled yet
            self._refreshing = loop.create_task(self._do_refresh())
        await asyncio.shield(self._refreshing)

    async def _do_refresh(self) -> None:
        try:
            await self.client.nodes_manager.initialize()
            self.refreshes += 1
        except Exception as exc:  # the cluster is mid-failover: the next error tries again
            log.warning("cluster slot map refresh failed: %r", exc)
        finally:
            self._refreshed_at = asyncio.get_running_loop().time()

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        if not self.client.nodes_manager.slots_cache:
            await self.client.initialize()
        self.calls += 1
        loop = asyncio.get_running_loop()
        give_up = loop.time() + RETRY_BUDGET_S
        target: PipelinedScripts | None = None  # where a MOVED/ASK sent this call
        asking = False
        backoff = 0.005
        while True:
            runner = target or self._runner_for(keys[0])
            try:
                if asking:
                    return await runner.run_asking(script, keys, args)
                return await runner.run(script, keys, args)
            except ResponseError as exc:
                message = str(exc)
                target, asking = None, False
                if message.startswith(("MOVED ", "ASK ")):
                    kind, _, node = message.split(" ", 2)
                    target, asking = self._runner_at(node), kind == "ASK"
                    if kind == "MOVED":
                        self.moved += 1
                        await self._refresh()
                    else:
                        self.asked += 1
                    if loop.time() < give_up:
                        continue
                elif not message.startswith(_RETRY_LATER):
                    raise
                if loop.time() + backoff >= give_up:
                    raise ClusterDownError(f"the cluster is reconfiguring: {exc}") from exc
                self.retried += 1
                await asyncio.sleep(backoff)  # the migration / election moves on meanwhile
                backoff = min(backoff * 2, 0.1)
                if not message.startswith("TRYAGAIN"):
                    await self._refresh()
            except RedisConnectionError:
                await self._refresh()
                raise

    def _runner_at(self, node: str) -> PipelinedScripts:
        """The runner of the node a redirect names (``host:port``)."""
        runner = self._runners.get(node)
        if runner is None:
            host, _, port = node.rpartition(":")
            runner = PipelinedScripts(f"redis://{self._auth}{host}:{port}/0", reply_timeout=self.reply_timeout,
                                      durability=self.durability, ack_timeout_ms=self.ack_timeout_ms)
            self._runners[node] = runner
        return runner

    def send(self, script: Script, keys: Sequence[str], args: Sequence[Arg], waiter: ReplyWaiter) -> None:
        # redirects and slot-map refreshes need run()'s retry logic: a task per call is fine here
        _send_as_task(self, script, keys, args, waiter)

    async def aclose(self) -> None:
        for runner in self._runners.values():
            await runner.aclose()
        self._runners.clear()


def connect_redis(url: str, *, cluster: bool = False) -> aioredis.Redis | RedisCluster:
    """The general-purpose client (bytes replies) for everything off the hot path."""
    if cluster:
        return RedisCluster.from_url(url, decode_responses=False)
    # One immediate retry on a broken connection: after Redis comes back, every pooled connection
    # is stale and its first command fails before reaching the new server; retrying it once on a
    # fresh connection is safe and turns the first requests after an outage from 503 into answers.
    return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=10,
                                   retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError])


def make_runner(url: str, client: aioredis.Redis | RedisCluster, *, cluster: bool = False,
                durability: str = "memory", ack_timeout_ms: int = 1000) -> ScriptRunner:
    """The hot path's runner: coalescing pipelines on plain TCP (one per master on a cluster);
    redis-py for TLS or unix sockets (``memory`` durability only: the barriers need the pipeline)."""
    durability = durability or "memory"
    if durability not in DURABILITY_MODES:
        raise DurabilityError(f"QUIZ_ACK_DURABILITY must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}")
    if not url.startswith("redis://"):
        if durability != "memory":
            raise DurabilityError(f"QUIZ_ACK_DURABILITY={durability} needs a redis:// URL (TLS and unix sockets "
                                  "go through redis-py, which sends no per-batch WAITAOF/WAIT)")
        return RedisPyScripts(client)
    if cluster:
        assert isinstance(client, RedisCluster)
        return ClusterScripts(client, url, durability=durability, ack_timeout_ms=ack_timeout_ms)
    return PipelinedScripts(url, durability=durability, ack_timeout_ms=ack_timeout_ms)


async def check_durability(client: aioredis.Redis | RedisCluster, durability: str) -> None:
    """At startup: the servers keep the promise of ``durability``, or a clear error now (instead
    of acknowledgements that mean less than the setting says).  ``fsync`` and ``replica`` need
    `appendonly yes` and `appendfsync always` on every master; ``replica`` without a connected
    replica only warns (it may be restarting): its writes get 503 until one is back."""
    if durability in ("", "memory"):
        return
    if isinstance(client, RedisCluster):
        await client.initialize()
        nodes: list[Any] = client.get_primaries()
    else:
        nodes = [None]
    for node in nodes:
        where = f" on {node.name}" if node is not None else ""
        extra: dict[str, Any] = {"target_nodes": node} if node is not None else {}
        try:
            config = await client.config_get("append*", **extra)
        except ResponseError as exc:
            raise DurabilityError(f"QUIZ_ACK_DURABILITY={durability}: cannot read the AOF settings{where} "
                                  f"(CONFIG GET refused: {exc}); set it to memory or allow CONFIG") from exc
        config = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                  for k, v in config.items()}
        if config.get("appendonly") != "yes" or config.get("appendfsync") != "always":
            raise DurabilityError(
                f"QUIZ_ACK_DURABILITY={durability} needs `appendonly yes` and `appendfsync always` on the "
                f"Valkey/Redis server{where} (it has appendonly {config.get('appendonly')}, appendfsync "
                f"{config.get('appendfsync')}); or set QUIZ_ACK_DURABILITY=memory")
        if durability == "replica":
            info = await client.info("replication", **extra)
            if not int(info.get("connected_slaves", 0)):
                log.warning("QUIZ_ACK_DURABILITY=replica but the master%s has no connected replica: "
                            "writes are refused (503) until one is back", where)
