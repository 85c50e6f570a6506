"""SQLite backend: the stdlib driver on one dedicated thread, so the event loop never blocks.

Every call is a closure run on a single-worker executor, which serialises access to the write
connection without locks. WAL mode lets export readers (their own connections, opened on the
same thread) see a consistent snapshot while batches keep committing.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from contest.storage.base import (
    ANSWER_COLUMNS,
    ATTEMPT_COLUMNS,
    EventBatch,
    PoisonEvent,
    Storage,
    StorageUnavailable,
    find_poison,
    parse_events,
)
from contest.storage.migrations import MIGRATIONS, render

__all__ = ["SqliteStorage"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_FETCH = 2000

_INSERT_USER = (
    "INSERT INTO users (user_id, name, phone, ext_id, org_id, created_at) VALUES (?,?,?,?,?,?) "
    "ON CONFLICT DO NOTHING"
)
# a fin that arrived first left a placeholder row: fill its start columns, never overwrite real ones
_UPSERT_START = (
    "INSERT INTO attempts (attempt_id, contest_id, user_id, org_id, org_path, started_at,"
    " deadline_at, day, paper)"
    " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (attempt_id) DO UPDATE SET user_id = excluded.user_id,"
    " org_id = excluded.org_id, org_path = excluded.org_path, started_at = excluded.started_at,"
    " deadline_at = excluded.deadline_at, day = excluded.day, paper = excluded.paper"
    " WHERE attempts.started_at IS NULL"
)
_INSERT_ANSWER = (
    "INSERT INTO answers (attempt_id, idx, contest_id, user_id, question_id, choice, correct, points_awarded,"
    " answered_at, flagged) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
)
_PLACEHOLDER = "INSERT INTO attempts (attempt_id, contest_id, user_id) VALUES (?,?,?) ON CONFLICT DO NOTHING"
_FINISH = (
    "UPDATE attempts SET score = ?, correct_count = ?, question_count = ?, duration_ms = ?, finished_at = ?,"
    " auto_finished = ?, counted = ? WHERE attempt_id = ? AND finished_at IS NULL"
)
_INSERT_REVIEW = (
    'INSERT INTO reviews (contest_id, attempt_id, action, reason, "by", at) VALUES (?,?,?,?,?,?)'
    " ON CONFLICT DO NOTHING"
)
# the latest review decides, so replays and out-of-order deliveries converge on the same state
_APPLY_REVIEWS = (
    "UPDATE attempts SET voided = COALESCE((SELECT CASE r.action WHEN 'void' THEN 1 ELSE 0 END FROM reviews r"
    " WHERE r.attempt_id = attempts.attempt_id ORDER BY r.at DESC, r.action DESC LIMIT 1), 0)"
    " WHERE attempt_id = ?"
)

class _Rollback(Exception):
    """Raised inside a probe transaction to undo it."""


class SqliteStorage(Storage):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # plumbing ---------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        return conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StorageUnavailable("storage is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            # locked, disk I/O, unable to open: retrying later may work, so report it as an outage
            raise StorageUnavailable(f"sqlite: {exc}") from exc

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None, "open() first"
        return self._conn

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def open(self) -> None:
        if self._executor is not None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        await self._run(self._open_sync)
        log.info("sqlite storage at %s", self.path)

    def _open_sync(self) -> None:
        self._conn = self._connect()
        self._conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        done = {row[0] for row in self._conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in MIGRATIONS:
            if version in done:
                continue

            def apply(conn: sqlite3.Connection, sql: str = sql, version: int = version) -> bool:
                # `quiz serve --workers N` opens the file in N processes at once: under the write
                # lock (BEGIN IMMEDIATE) the version is checked again, so only one applies it
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    return False
                for stmt in render(sql, "sqlite"):
                    conn.execute(stmt)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                return True

            if self._transaction(apply):
                log.info("sqlite: applied migration %s", version)

    async def close(self) -> None:
        if self._executor is None:
            return
        executor = self._executor
        await self._run(self._close_sync)
        self._executor = None
        executor.shutdown(wait=True)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def ping(self) -> None:
        await self._run(lambda: self._db.execute("SELECT 1").fetchone())

    def _arg(self, n: int) -> str:
        return "?"

    async def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self._run(self._select, sql, tuple(args))

    async def _write_rows(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._run(self._transaction, lambda c: c.executemany(sql, rows))

    def _select(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = self._db.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # the durable sink -------------------------------------------------------------------------
    async def write_events(self, events: list[dict[str, str]]) -> None:
        batch = parse_events(events)
        if not len(batch):
            return
        try:
            await self._run(self._transaction, lambda c: self._write_batch(c, batch))
        except (sqlite3.IntegrityError, sqlite3.DataError) as exc:
            index = await find_poison(events, self._fails)
            if index is None:
                raise
            raise PoisonEvent(index, str(exc)) from exc

    async def _fails(self, events: list[dict[str, str]]) -> bool:
        def probe(conn: sqlite3.Connection) -> None:
            self._write_batch(conn, parse_events(events))
            raise _Rollback

        try:
            await self._run(self._transaction, probe)
        except _Rollback:
            return False
        except (sqlite3.IntegrityError, sqlite3.DataError, PoisonEvent):
            return True
        return False

    def _write_batch(self, conn: sqlite3.Connection, batch: EventBatch) -> None:
        if batch.users:
            conn.executemany(_INSERT_USER, batch.users)
            self._check_users(conn, batch)
        if batch.starts:
            conn.executemany(_UPSERT_START, batch.starts)
        if batch.answers:
            conn.executemany(_INSERT_ANSWER, batch.answers)
        if batch.finishes:
            conn.executemany(_PLACEHOLDER, [(f[0], f[1], f[2]) for f in batch.finishes])
            conn.executemany(_FINISH, [(*f[3:10], f[0]) for f in batch.finishes])
        if batch.reviews:
            conn.executemany(_PLACEHOLDER, [(r[1], r[0], None) for r in batch.reviews])
            conn.executemany(_INSERT_REVIEW, batch.reviews)
            conn.executemany(_APPLY_REVIEWS, sorted({(r[1],) for r in batch.reviews}))

    @staticmethod
    def _check_users(conn: sqlite3.Connection, batch: EventBatch) -> None:
        # a user row that is still missing after the insert lost a phone/ext_id uniqueness race:
        # another user owns that phone, which retrying can never fix
        ids = [u[0] for u in batch.users]
        present: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            present.update(
                r[0] for r in conn.execute(f"SELECT user_id FROM users WHERE user_id IN ({marks})", chunk)
            )
        for row, index in zip(batch.users, batch.user_index, strict=True):
            if row[0] not in present:
                raise PoisonEvent(index, f"phone or ext_id of user {row[0]} belongs to another user")

    # rebuild support --------------------------------------------------------------------------
    def load_attempts(self, contest_id: str) -> AsyncIterator[dict[str, Any]]:
        sql = (
            f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts WHERE contest_id = ?"
            " ORDER BY started_at IS NULL, started_at, attempt_id"
        )
        return self._records(sql, (contest_id,), ATTEMPT_COLUMNS)

    def load_answers(self, contest_id: str) -> AsyncIterator[dict[str, Any]]:
        sql = f"SELECT {', '.join(ANSWER_COLUMNS)} FROM answers WHERE contest_id = ? ORDER BY attempt_id, idx"
        return self._records(sql, (contest_id,), ANSWER_COLUMNS)

    async def _stream(self, sql: str, args: tuple[Any, ...]) -> AsyncIterator[tuple[Any, ...]]:
        """Rows in chunks from a reader connection of its own (a WAL snapshot; writers go on)."""
        conn = await self._run(self._connect)
        try:
            cur = await self._run(conn.execute, sql, args)
            while True:
                rows = await self._run(cur.fetchmany, _FETCH)
                for row in rows:
                    yield row
                if len(rows) < _FETCH:
                    break
        finally:
            if self._executor is not None:
                await self._run(conn.close)
