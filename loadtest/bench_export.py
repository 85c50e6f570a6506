"""Benchmark of the exports on a big PostgreSQL: how soon one org subtree's export starts streaming.

    python loadtest/bench_export.py                         # 20 M answers; starts its own PostgreSQL
    python loadtest/bench_export.py --answers 2000000       # a tenth of it
    python loadtest/bench_export.py --pg-url postgresql://u@h/db   # reuse a loaded database (--skip-load)

Loads ``--answers`` answer rows (10 per attempt, one finished attempt per user, so answers/10 users)
straight in SQL with generate_series (not through the flusher), into the schema the storage
migrations create: users spread over an org tree of ``--regions`` regions of 1,000 orgs each, so
one region's subtree holds users/regions users (100,000 at the defaults), scattered over the
table as real sign-ups would be. Indexes are built after the load (as a restore would), then
ANALYZE (what autovacuum does on a live database). Then, through the storage layer and
contest/export.py, it times for that subtree:

- the first row out of ``iter_results`` / ``iter_answers`` (the server-side cursor's first FETCH),
- the first CSV data chunk (64 KB after the header) of ``export_rows``,
- and, with ``--full``, the whole export.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_flusher import local_postgres

from contest.export import export_rows
from contest.storage.postgres import PostgresStorage

__all__ = ["main"]

CONTEST = "big"
PER_ATTEMPT = 10
ORGS_PER_REGION = 1000
T0 = 1_700_000_000_000

# users/attempts: user k sits in region (k * 7919) % regions, so a region's users are spread
# over the whole table rather than stored together
_LOAD = [
    "ALTER TABLE answers DROP CONSTRAINT answers_pkey",
    "ALTER TABLE attempts DROP CONSTRAINT attempts_pkey",
    "ALTER TABLE users DROP CONSTRAINT users_pkey",
    "ALTER TABLE users DROP CONSTRAINT users_phone_key",
    "ALTER TABLE users DROP CONSTRAINT users_ext_id_key",
    "DROP INDEX attempts_contest_path",
    "DROP INDEX attempts_contest_started",
    """INSERT INTO orgs (org_id, parent_id, name, level, members)
       SELECT 'r' || r, NULL, 'region ' || r, 1, 0 FROM generate_series(0, {regions} - 1) r""",
    """INSERT INTO users (user_id, name, phone, ext_id, org_id, created_at)
       SELECT 'u' || lpad(k::text, 8, '0'), '选手' || k, '1' || lpad(k::text, 10, '0'), NULL,
              'o' || ((k::bigint * 7919) % {regions}) || '-' || (k % {orgs}), {t0}
       FROM generate_series(0, {users} - 1) k""",
    """INSERT INTO attempts (attempt_id, contest_id, user_id, org_id, org_path, started_at, deadline_at, day,
              paper, finished_at, score, correct_count, question_count, duration_ms, auto_finished, counted)
       SELECT 'a' || lpad(k::text, 8, '0'), '{cid}', 'u' || lpad(k::text, 8, '0'),
              'o' || ((k::bigint * 7919) % {regions}) || '-' || (k % {orgs}),
              '/root/r' || lpad(((k::bigint * 7919) % {regions})::text, 3, '0') || '/o' || (k % {orgs}) || '/',
              {t0} + k, {t0} + k + 600000, '2024-01-01', '[]', {t0} + k + 300000, (k % 11) * 10,
              k % 11, {per}, 300000, 0, 1
       FROM generate_series(0, {users} - 1) k""",
    """INSERT INTO answers (attempt_id, idx, contest_id, user_id, question_id, choice, correct,
              points_awarded, answered_at, flagged)
       SELECT 'a' || lpad(k::text, 8, '0'), i, '{cid}', 'u' || lpad(k::text, 8, '0'), 'q' || ((k + i) % 500),
              'B', (i < k % 11)::int, CASE WHEN i < k % 11 THEN 10 ELSE 0 END, {t0} + k + i * 1000,
              (k % 97 = 0 AND i = 0)::int
       FROM generate_series(0, {users} - 1) k, generate_series(0, {per} - 1) i""",
    # the schema's own constraints and indexes back, exactly as migrations.py declares them
    "ALTER TABLE users ADD PRIMARY KEY (user_id)",
    "ALTER TABLE users ADD CONSTRAINT users_phone_key UNIQUE (phone)",
    "ALTER TABLE users ADD CONSTRAINT users_ext_id_key UNIQUE (ext_id)",
    "ALTER TABLE attempts ADD PRIMARY KEY (attempt_id)",
    "CREATE INDEX attempts_contest_path ON attempts (contest_id, org_path, attempt_id)",
    "CREATE INDEX attempts_contest_started ON attempts (contest_id, started_at)",
    "ALTER TABLE answers ADD PRIMARY KEY (attempt_id, idx)",
    "ANALYZE",
]


async def load(url: str, answers: int, regions: int) -> None:
    users = answers // PER_ATTEMPT
    storage = PostgresStorage(url)
    await storage.open()  # applies the migrations: the real schema
    await storage.close()
    conn = await asyncpg.connect(url, command_timeout=3600)
    try:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        started = time.perf_counter()
        for sql in _LOAD:
            t = time.perf_counter()
            await conn.execute(
                sql.format(regions=regions, orgs=ORGS_PER_REGION, users=users, per=PER_ATTEMPT, t0=T0, cid=CONTEST)
            )
            print(f"  {time.perf_counter() - t:7.1f} s  {' '.join(sql.split())[:90]}", flush=True)
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"loaded {users:,} users and attempts, {answers:,} answers in "
              f"{time.perf_counter() - started:.0f} s; database {size}")
    finally:
        await conn.close()


async def time_export(storage: PostgresStorage, what: str, prefix: str, full: bool) -> None:
    rows = storage.iter_results(CONTEST, prefix) if what == "results" else storage.iter_answers(CONTEST, prefix)
    started = time.perf_counter()
    async with contextlib.aclosing(rows):
        async for _ in rows:
            first_row = time.perf_counter() - started
            break
    started = time.perf_counter()
    chunks = export_rows(storage, what, CONTEST, prefix, "csv")
    n_bytes, first_data = 0, None
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            n_bytes += len(chunk)
            if first_data is None and n_bytes > len(chunk):  # the first one is the header alone
                first_data = time.perf_counter() - started
                if not full:
                    break
    total = time.perf_counter() - started
    assert first_data is not None, f"the {what} export of {prefix} has no data rows"
    line = f"  {what} of {prefix}: first row {first_row * 1000:.0f} ms, first CSV data chunk {first_data * 1000:.0f} ms"
    if full:
        line += f", whole CSV {n_bytes / 1e6:.1f} MB in {total:.1f} s"
    print(line, flush=True)


async def run(url: str, args: argparse.Namespace) -> None:
    if not args.skip_load:
        await load(url, args.answers, args.regions)
    storage = PostgresStorage(url)
    await storage.open()
    try:
        prefix = f"/root/r{args.region:03d}/"
        for _ in range(args.repeat):
            for what in ("results", "answers"):
                await time_export(storage, what, prefix, args.full)
    finally:
        await storage.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=20_000_000, help="answer rows (default 20 M)")
    parser.add_argument("--regions", type=int, default=20, help="org subtrees; users/regions each")
    parser.add_argument("--region", type=int, default=7, help="the subtree to export")
    parser.add_argument("--repeat", type=int, default=2, help="timings per export (the 1st has a cold cache)")
    parser.add_argument("--full", action="store_true", help="also time the whole subtree export")
    parser.add_argument("--pg-url", help="use this PostgreSQL database instead of starting one")
    parser.add_argument("--skip-load", action="store_true", help="with --pg-url: the data is already there")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.pg_url or stack.enter_context(local_postgres())
        asyncio.run(run(url, args))


if __name__ == "__main__":
    main()
