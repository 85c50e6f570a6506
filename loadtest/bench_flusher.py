"""Benchmark of the durable sink: how fast the Flusher drains a contest stream into each database.

    python loadtest/bench_flusher.py                      # starts its own Valkey and PostgreSQL
    python loadtest/bench_flusher.py --n 100000 --backends sqlite
    python loadtest/bench_flusher.py --redis-url redis://h:6379/0 --pg-url postgresql://u@h/db
    python loadtest/bench_flusher.py --compare --n 200000    # raw COPY vs 1, 2 and 4 flusher processes

Drain mode: fill one stream with N answer events (plus one start per 10 answers) by pipelined
XADD, then time the Flusher committing them. Sustained mode: produce a steady answer rate while
the flusher runs and report the lag (now - stream id time of a batch's oldest entry).

Compare mode (also ``quiz bench --only flusher``): the database's own speed next to the flusher's.
A raw asyncpg COPY (``copy_records_to_table``, one transaction) writes the very rows the flusher
will write (the answers into ``answers``, the attempt starts into ``attempts``: the same tables,
the same indexes), built in memory beforehand so only the COPY is timed, once before the flusher
runs and once after (the baseline is their mean); in between the same entries are put in the
stream, each time anew, and 1, 2 and 4 flusher processes (``Flusher`` in processes of their own,
one consumer each of the ``flusher`` group) drain them, timed from the moment they are told to go
until the last one finds the stream empty. Every measurement starts on empty tables, and the
answers stored are counted after each drain (exactly N, or the run fails).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import logging
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contest.embedded_redis import EmbeddedValkey, free_port
from contest.storage import Storage, open_storage
from contest.storage.base import ANSWER_COLUMNS, START_COLUMNS, parse_events
from contest.workers.flusher import Flusher, consumer_name, relax_gc
from leaderboard import keys
from leaderboard.entries import entry_fields

__all__ = ["Comparison", "compare", "main"]

log = logging.getLogger("bench_flusher")

CONTEST = "bench"
STREAM = keys.events(CONTEST)
T0 = 1_700_000_000_000
PER_ATTEMPT = 10


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL from Debian's binaries (run as the postgres user when we are root)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise SystemExit(
            "no PostgreSQL binaries under /usr/lib/postgresql: pass --pg-url or apt-get install postgresql"
        )
    bin_dir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="bench-pg-", dir="/tmp"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(base, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = str(base / "data")

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60)

    run(
        str(bin_dir / "initdb"),
        "-D",
        data,
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
    )
    # durable settings stay the defaults except fsync-related ones, as a tuned production box would
    # have a fast disk; shared_buffers sized for a 20M-row answers table in a test run
    opts = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min"
    )
    run(str(bin_dir / "pg_ctl"), "-D", data, "-l", str(base / "log"), "-w", "-o", opts, "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench")
        yield f"postgresql://postgres@127.0.0.1:{port}/bench"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", data, "-w", "stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)


def answer_events(first_attempt: int, n_answers: int, at: int) -> Iterator[dict[str, str]]:
    """docs/events.md events; the stream gets them as the scripts write them (entry_fields)."""
    for k in range(n_answers):
        a, i = divmod(k, PER_ATTEMPT)
        aid, uid = f"a{first_attempt + a:09d}", f"u{first_attempt + a:09d}"
        if i == 0:
            yield {
                "t": "start",
                "cid": CONTEST,
                "aid": aid,
                "uid": uid,
                "org": "o1",
                "path": "/p1/c1/o1/",
                "at": str(at),
                "dl": str(at + 600_000),
                "day": "2024-01-01",
                "paper": "[]",
            }
        yield {
            "t": "ans",
            "cid": CONTEST,
            "aid": aid,
            "uid": uid,
            "i": str(i),
            "qid": f"q{i}",
            "ch": "B",
            "ok": "1",
            "pts": "10",
            "at": str(at + i),
            "fl": "0",
        }


def _fields(event: dict[str, str]) -> dict[FieldT, EncodableT]:
    """The entry the scripts would XADD for ``event`` (typed as redis-py's xadd takes it)."""
    return {name: value for name, value in entry_fields(event).items()}


async def fill(redis: aioredis.Redis, n_answers: int, first_attempt: int = 0) -> int:
    """Put ``n_answers`` answers (and their attempts' starts) in the stream; returns the entries."""
    await redis.sadd(keys.streams_registry(), STREAM)
    written = 0
    pipe = redis.pipeline(transaction=False)
    for event in answer_events(first_attempt, n_answers, T0):
        pipe.xadd(STREAM, _fields(event))
        written += 1
        if len(pipe) >= 5000:
            await pipe.execute()
    await pipe.execute()
    return written


async def drain(redis: aioredis.Redis, storage: Storage, n: int, batch: int) -> float:
    await redis.delete(STREAM)
    entries = await fill(redis, n)
    flusher = Flusher(redis, storage, consumer="bench", batch=batch)
    relax_gc()  # what Flusher.run does; this loop calls flush_once itself
    cpu = time.process_time()
    started = time.perf_counter()
    committed = 0
    while committed < entries:
        done = await flusher.flush_once()
        if not done:
            break
        committed += done
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    counts = await storage.count_rows(CONTEST)
    rate = n / elapsed
    print(
        f"  drain: {entries} entries ({n} answers) in {elapsed:.2f} s = {rate:,.0f} answer rows/s, "
        f"{entries / elapsed:,.0f} entries/s; flusher CPU {cpu:.2f} s; stored {counts['answers']} answers; "
        f"backlog {await flusher.backlog()}"
    )
    return rate


async def sustained(redis: aioredis.Redis, storage: Storage, rate: int, seconds: float, batch: int) -> None:
    await redis.delete(STREAM)
    flusher = Flusher(redis, storage, consumer="bench-sustained", batch=batch, block_ms=50)
    stop = asyncio.Event()
    runner = asyncio.create_task(flusher.run(stop))
    lags: list[int] = []
    tick = 0.05
    next_attempt = 10_000_000
    started = time.perf_counter()
    seen_batches = 0
    while (now := time.perf_counter()) - started < seconds:
        due = int((now - started) * rate) - (next_attempt - 10_000_000) * PER_ATTEMPT
        if due >= PER_ATTEMPT:
            attempts = due // PER_ATTEMPT
            pipe = redis.pipeline(transaction=False)
            for event in answer_events(next_attempt, attempts * PER_ATTEMPT, int(time.time() * 1000)):
                pipe.xadd(STREAM, _fields(event))
            await pipe.execute()
            next_attempt += attempts
        if flusher.batches != seen_batches:
            seen_batches = flusher.batches
            lags.append(flusher.last_lag_ms)
        await asyncio.sleep(tick / 5)
    stop.set()
    await runner
    produced = (next_attempt - 10_000_000) * PER_ATTEMPT
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0
    print(
        f"  sustained {rate}/s for {seconds:.0f} s: {produced} answers, {flusher.batches} batches, "
        f"lag max {max(lags, default=0)} ms, p99 {p99} ms, "
        f"median {statistics.median(lags) if lags else 0} ms; "
        f"backlog after stop {await flusher.backlog()}"
    )


# ---- compare mode: raw COPY vs 1, 2, 4 flusher processes ------------------------------------------
_READY, _GO, _DONE = "bench:flusher:ready", "bench:flusher:go", "bench:flusher:done"
_SELF = str(Path(__file__).resolve())


@dataclass
class Comparison:
    """One compare run: answer rows/s of the raw COPY and of each flusher process count."""

    rows: int
    raw_copy: float  # the mean of the two raw COPYs below
    raw_copies: tuple[float, float] = (0.0, 0.0)  # before and after the flusher drains
    flusher: dict[int, float] = field(default_factory=dict)  # processes -> answer rows/s
    cpu_s: dict[int, float] = field(default_factory=dict)  # processes -> CPU of the flusher processes


async def _empty_tables(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("TRUNCATE answers, attempts")
        # the dirty pages of the last run are written now, not during the next measurement
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def _stored_answers(pg_url: str) -> int:
    conn = await asyncpg.connect(pg_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM answers"))
    finally:
        await conn.close()


async def raw_copy_rate(pg_url: str, n_answers: int) -> float:
    """Answer rows/s of one asyncpg COPY of the rows the flusher writes for ``n_answers`` answers."""
    batch = parse_events([{str(k): str(v) for k, v in e.items()} for e in answer_events(0, n_answers, T0)])
    await _empty_tables(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("attempts", records=batch.starts, columns=START_COLUMNS)
            await conn.copy_records_to_table("answers", records=batch.answers, columns=ANSWER_COLUMNS)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    stored = await _stored_answers(pg_url)
    if stored != n_answers:
        raise RuntimeError(f"raw COPY stored {stored} answers, not {n_answers}")
    return n_answers / elapsed


async def _worker(redis_url: str, pg_url: str, batch: int) -> None:
    """One flusher process of compare mode: ready, wait for go, flush until nothing is left, report."""
    redis = aioredis.Redis.from_url(redis_url)
    storage = open_storage(pg_url)
    await storage.open()
    try:
        flusher = Flusher(redis, storage, consumer=consumer_name(), batch=batch)
        await flusher.streams()
        relax_gc()  # what Flusher.run does; this loop calls flush_once itself
        await redis.rpush(_READY, os.getpid())
        while not await redis.blpop([_GO], timeout=1):  # short waits: a long one hits the socket timeout
            pass
        cpu = time.process_time()
        committed = 0
        # nothing new in the stream: the other processes commit what they still hold
        while (done := await flusher.flush_once()) > 0:
            committed += done
        report = {"committed": committed, "end": time.monotonic(), "cpu": time.process_time() - cpu}
        await redis.rpush(_DONE, json.dumps(report))
    finally:
        await storage.close()
        await redis.aclose()


async def flusher_processes_rate(redis_url: str, pg_url: str, n_answers: int, processes: int,
                                 batch: int = 5000) -> tuple[float, float]:
    """Answer rows/s and total CPU s of ``processes`` flusher processes draining ``n_answers`` answers."""
    await _empty_tables(pg_url)
    redis = aioredis.Redis.from_url(redis_url)
    procs: list[asyncio.subprocess.Process] = []
    try:
        await redis.delete(STREAM, _READY, _GO, _DONE)
        entries = await fill(redis, n_answers)
        for _ in range(processes):
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, _SELF, "--worker", "--redis-url", redis_url, "--pg-url", pg_url,
                "--batch", str(batch), stdin=subprocess.DEVNULL))
        while await redis.llen(_READY) < processes:
            if any(p.returncode is not None for p in procs):
                raise RuntimeError("a flusher process exited before it was ready")
            await asyncio.sleep(0.05)
        started = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
        await redis.rpush(_GO, *range(processes))
        deadline = started + 600
        while await redis.llen(_DONE) < processes:
            if time.monotonic() > deadline or any(p.returncode not in (None, 0) for p in procs):
                raise RuntimeError("a flusher process failed or did not finish within 600 s")
            await asyncio.sleep(0.02)
        reports = [json.loads(r) for r in await redis.lrange(_DONE, 0, -1)]
        elapsed = max(r["end"] for r in reports) - started
    finally:
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await redis.aclose()
    committed = sum(r["committed"] for r in reports)
    stored = await _stored_answers(pg_url)
    if committed != entries or stored != n_answers:
        raise RuntimeError(f"{processes} flushers committed {committed} of {entries} entries, "
                           f"stored {stored} of {n_answers} answers")
    return n_answers / elapsed, sum(r["cpu"] for r in reports)


async def compare(redis_url: str, pg_url: str, n_answers: int, processes: tuple[int, ...] = (1, 2, 4),
                  batch: int = 5000) -> Comparison:
    """One run of compare mode on a PostgreSQL database whose schema the flusher's storage made."""
    storage = open_storage(pg_url)
    await storage.open()  # migrates
    await storage.close()
    # a raw COPY before and after the drains, their mean the baseline: one COPY lasts a second or
    # two, and on a shared machine a neighbour's burst would otherwise decide the ratio alone
    before = await raw_copy_rate(pg_url, n_answers)
    flusher: dict[int, float] = {}
    cpu_s: dict[int, float] = {}
    for count in processes:
        flusher[count], cpu_s[count] = await flusher_processes_rate(redis_url, pg_url, n_answers, count, batch)
    after = await raw_copy_rate(pg_url, n_answers)
    await _empty_tables(pg_url)
    return Comparison(rows=n_answers, raw_copy=(before + after) / 2, raw_copies=(before, after), flusher=flusher,
                      cpu_s=cpu_s)


def print_comparison(result: Comparison) -> None:
    print(f"  raw asyncpg COPY: {result.raw_copy:,.0f} answer rows/s ({result.rows} answers + their starts;"
          f" {result.raw_copies[0]:,.0f} before the drains, {result.raw_copies[1]:,.0f} after)")
    for count, rate in result.flusher.items():
        print(f"  {count} flusher process(es): {rate:,.0f} answer rows/s = {rate / result.raw_copy:.2f}x raw COPY;"
              f" flusher CPU {result.cpu_s[count]:.2f} s")


async def bench_backend(name: str, url: str, redis: aioredis.Redis, args: argparse.Namespace) -> None:
    print(f"{name}: {url}")
    storage = open_storage(url)
    if args.writers:
        storage.parallel_writes = args.writers
    await storage.open()
    try:
        await drain(redis, storage, args.n, args.batch)
        if args.sustained_s > 0:
            await sustained(redis, storage, args.rate, args.sustained_s, args.batch)
    finally:
        await storage.close()


async def run(args: argparse.Namespace, redis_url: str, pg_url: str | None, sqlite_url: str) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        if "sqlite" in args.backends:
            await bench_backend("sqlite", sqlite_url, redis, args)
        if "postgres" in args.backends and pg_url:
            await bench_backend("postgres", pg_url, redis, args)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500_000, help="answer events to drain (default 500000)")
    parser.add_argument("--batch", type=int, default=5000, help="flusher batch size")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--writers", type=int, default=0, help="batches written at once (default: the backend's own)"
    )
    parser.add_argument(
        "--redis-url", help="use this Redis/Valkey instead of starting one (it gets FLUSHed!)"
    )
    parser.add_argument("--pg-url", help="use this PostgreSQL database instead of starting one")
    parser.add_argument("--sqlite", help="SQLite file (default: a temp file)")
    parser.add_argument("--rate", type=int, default=5000, help="answers/s in sustained mode")
    parser.add_argument("--sustained-s", type=float, default=30, help="sustained mode duration; 0 skips it")
    parser.add_argument("--compare", action="store_true",
                        help="raw COPY vs 1, 2 and 4 flusher processes into PostgreSQL (--runs times)")
    parser.add_argument("--runs", type=int, default=1, help="compare mode: runs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one compare-mode process
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.worker:
        asyncio.run(_worker(args.redis_url, args.pg_url, args.batch))
        return
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-flusher-")))
        redis_url = args.redis_url
        if not redis_url:
            redis_url = stack.enter_context(EmbeddedValkey(tmp / "valkey", appendonly=False)).url
        pg_url = args.pg_url
        if not pg_url and "postgres" in args.backends:
            pg_url = stack.enter_context(local_postgres())
        sqlite_url = f"sqlite:///{Path(args.sqlite).resolve() if args.sqlite else tmp / 'bench.db'}"
        if args.compare:
            if not pg_url:
                raise SystemExit("compare mode needs PostgreSQL")
            for _ in range(args.runs):
                print_comparison(asyncio.run(compare(redis_url, pg_url, args.n, batch=args.batch)))
            return
        asyncio.run(run(args, redis_url, pg_url, sqlite_url))


if __name__ == "__main__":
    main()
