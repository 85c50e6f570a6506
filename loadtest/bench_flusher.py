"""Benchmark of the durable sink: how fast the Flusher drains a contest stream into each database.

    python loadtest/bench_flusher.py                      # starts its own Valkey and PostgreSQL
    python loadtest/bench_flusher.py --n 100000 --backends sqlite
    python loadtest/bench_flusher.py --redis-url redis://h:6379/0 --pg-url postgresql://u@h/db

Drain mode: fill one stream with N answer events (plus one start per 10 answers) by pipelined
XADD, then time the Flusher committing them. Sustained mode: produce a steady answer rate while
the flusher runs and report the lag (now - stream id time of a batch's oldest entry).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
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
from pathlib import Path

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contest.embedded_redis import EmbeddedValkey, free_port
from contest.storage import Storage, open_storage
from contest.workers.flusher import Flusher, relax_gc
from leaderboard import keys

__all__ = ["main"]

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


def answer_events(first_attempt: int, n_answers: int, at: int) -> Iterator[dict[FieldT, EncodableT]]:
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


async def fill(redis: aioredis.Redis, n_answers: int, first_attempt: int = 0) -> int:
    await redis.sadd(keys.streams_registry(), STREAM)
    written = 0
    pipe = redis.pipeline(transaction=False)
    for event in answer_events(first_attempt, n_answers, T0):
        pipe.xadd(STREAM, event)
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
                pipe.xadd(STREAM, event)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-flusher-")))
        redis_url = args.redis_url
        if not redis_url:
            redis_url = stack.enter_context(EmbeddedValkey(tmp / "valkey", appendonly=False)).url
        pg_url = args.pg_url
        if not pg_url and "postgres" in args.backends:
            pg_url = stack.enter_context(local_postgres())
        sqlite_url = f"sqlite:///{Path(args.sqlite).resolve() if args.sqlite else tmp / 'bench.db'}"
        asyncio.run(run(args, redis_url, pg_url, sqlite_url))


if __name__ == "__main__":
    main()
