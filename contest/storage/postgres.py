"""PostgreSQL backend on an asyncpg pool.

A batch is COPYed (binary protocol, no per-row round trips) into TEMP staging tables and moved
into the real tables with ``INSERT .. SELECT .. ON CONFLICT DO NOTHING`` in the same
transaction, which keeps replays idempotent without giving up COPY's speed. Answers, the bulk
of every batch, are COPYed straight into ``answers`` (staging only when a replay collides), in
text format built from the stream's own bytes when the flusher hands raw entries (``write_raw``);
on that path the starts go straight into ``attempts`` too, the whole batch being redone through
staging when any row is already there (``_write_batch(direct=True)``). The staging tables
are created once per pooled connection (``ON COMMIT DELETE ROWS``) rather than per batch, so no
catalog churn on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, NamedTuple

import asyncpg

from contest.storage.base import (
    ANSWER_COLUMNS,
    ATTEMPT_COLUMNS,
    FINISH_COLUMNS,
    REVIEW_COLUMNS,
    START_COLUMNS,
    USER_COLUMNS,
    EventBatch,
    PoisonEvent,
    Storage,
    StorageUnavailable,
    event_from_fields,
    find_poison,
    parse_events,
)
from contest.storage.migrations import MIGRATIONS, render
from leaderboard.entries import ANSWER_ENTRY, ANSWER_ENTRY_FIELDS, START_ENTRY, START_ENTRY_FIELDS

__all__ = ["PostgresStorage"]

log = logging.getLogger(__name__)

_FETCH = 5000
# the first FETCH of an export is small: its rows are what "starts streaming" waits for, and on a
# cold cache each results row costs random reads (its attempt, its user, its answers' index)
_FIRST_FETCH = 500
# failures that mean "the database is not reachable right now", as opposed to "this data is bad"
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # CannotConnectNow, AdminShutdown, CrashShutdown
    asyncpg.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
)

# SQLSTATE classes 22 (data exception) and 23 (integrity violation): this row, not the database
_DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_users (ord INTEGER, user_id TEXT, name TEXT, phone TEXT, ext_id TEXT,
    org_id TEXT, created_at BIGINT) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_starts (attempt_id TEXT, contest_id TEXT, user_id TEXT, org_id TEXT,
    org_path TEXT, started_at BIGINT, deadline_at BIGINT, day TEXT, paper TEXT) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_answers (attempt_id TEXT, idx INTEGER, contest_id TEXT, user_id TEXT,
    question_id TEXT, choice TEXT, correct SMALLINT, points_awarded INTEGER, answered_at BIGINT,
    flagged SMALLINT) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_fins (attempt_id TEXT, contest_id TEXT, user_id TEXT, score INTEGER,
    correct_count INTEGER, question_count INTEGER, duration_ms BIGINT, finished_at BIGINT,
    auto_finished SMALLINT, counted SMALLINT) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_reviews (contest_id TEXT, attempt_id TEXT, action TEXT, reason TEXT,
    "by" TEXT, at BIGINT) ON COMMIT DELETE ROWS;
"""

_COLS_ANSWERS = ", ".join(ANSWER_COLUMNS)
_COLS_STARTS = ", ".join(START_COLUMNS)
_MOVE_USERS = (
    "INSERT INTO users (user_id, name, phone, ext_id, org_id, created_at) SELECT user_id, name,"
    " phone, ext_id,"
    " org_id, created_at FROM stage_users ORDER BY ord ON CONFLICT DO NOTHING"
)
# a user still missing after the insert lost a phone/ext_id uniqueness race to another user
_LOST_USERS = (
    "SELECT min(s.ord) FROM stage_users s"
    " WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = s.user_id)"
)
# DISTINCT ON: a start staged twice (a replayed entry beside its first delivery) must not make
# ON CONFLICT DO UPDATE touch one row twice, which PostgreSQL refuses for the whole statement
_MOVE_STARTS = (
    f"INSERT INTO attempts ({_COLS_STARTS}) SELECT DISTINCT ON (attempt_id) {_COLS_STARTS} FROM stage_starts"
    " ON CONFLICT (attempt_id) DO UPDATE SET user_id = excluded.user_id, org_id = excluded.org_id,"
    " org_path = excluded.org_path, started_at = excluded.started_at, deadline_at = excluded.deadline_at,"
    " day = excluded.day, paper = excluded.paper WHERE attempts.started_at IS NULL"
)
_MOVE_ANSWERS = (
    f"INSERT INTO answers ({_COLS_ANSWERS}) SELECT {_COLS_ANSWERS} FROM stage_answers ON CONFLICT DO NOTHING"
)
_FIN_PLACEHOLDERS = (
    "INSERT INTO attempts (attempt_id, contest_id, user_id) SELECT attempt_id, contest_id, user_id"
    " FROM stage_fins ON CONFLICT DO NOTHING"
)
_MOVE_FINS = (
    "UPDATE attempts SET score = s.score, correct_count = s.correct_count, question_count = s.question_count,"
    " duration_ms = s.duration_ms, finished_at = s.finished_at, auto_finished = s.auto_finished,"
    " counted = s.counted FROM stage_fins s WHERE attempts.attempt_id = s.attempt_id"
    " AND attempts.finished_at IS NULL"
)
_REVIEW_PLACEHOLDERS = (
    "INSERT INTO attempts (attempt_id, contest_id) SELECT attempt_id, contest_id FROM stage_reviews"
    " ON CONFLICT DO NOTHING"
)
_MOVE_REVIEWS = (
    'INSERT INTO reviews (contest_id, attempt_id, action, reason, "by", at)'
    ' SELECT contest_id, attempt_id, action, reason, "by", at FROM stage_reviews ON CONFLICT DO NOTHING'
)
# the latest review decides, so replays and out-of-order deliveries converge on the same state
_APPLY_REVIEWS = (
    "UPDATE attempts SET voided = CASE r.action WHEN 'void' THEN 1 ELSE 0 END"
    " FROM (SELECT DISTINCT ON (attempt_id) attempt_id, action FROM reviews"
    "       WHERE attempt_id IN (SELECT attempt_id FROM stage_reviews) ORDER BY attempt_id, at"
    " DESC, action DESC) r"
    " WHERE attempts.attempt_id = r.attempt_id"
)

# The raw stream entry of an answer in its older form (leaderboard/entries.py): [b"t", b"ans",
# b"cid", cid, ...]. Its values are picked by position, in ANSWER_COLUMNS order.
_ANS_KEYS = [b"t", b"cid", b"aid", b"uid", b"i", b"qid", b"ch", b"ok", b"pts", b"at", b"fl"]
_ANS_VALUES = operator.itemgetter(5, 9, 3, 7, 11, 13, 15, 17, 19, 21)
_BITS = frozenset((b"0", b"1"))
_ANSWER, _START = ANSWER_ENTRY.encode(), START_ENTRY.encode()
_ANSWER_TABS, _START_TABS = len(ANSWER_ENTRY_FIELDS) - 1, len(START_ENTRY_FIELDS) - 1


class _CopyText(NamedTuple):
    """A raw batch's packed answers and starts as COPY text-format buffers, and the indexes of the
    entries left for parse_events."""

    answers: bytes
    starts: bytes
    others: list[int]


def _copy_text(lines: list[bytes], tabs: int) -> bytes | None:
    """``lines`` as one COPY buffer; None when a value would need COPY escaping (never written so:
    a tab, newline, backslash or CR inside one)."""
    if not lines:
        return b""
    text = b"\n".join(lines) + b"\n"
    if text.count(b"\t") != tabs * len(lines) or text.count(b"\n") != len(lines) or b"\\" in text or b"\r" in text:
        return None
    return text


def _packed_copy_text(entries: list[list[Any]]) -> _CopyText | None:
    """The answers and starts of a raw batch as COPY text; None when a buffer would need escaping
    (then the general path runs).

    This skips a dict, a Python int per number and asyncpg's binary encoding per row: a packed
    entry's value from Redis is already a COPY line, and goes to PostgreSQL as it came, which
    parses the numbers. A row PostgreSQL refuses (a bad number) sends the whole batch down the
    general path, which names the poison entry, so the two paths store the same rows.
    """
    # comprehensions over the batch, not a loop: this runs for every entry
    answers = [f[1] for f in entries if f[0] == _ANSWER and len(f) == 2]
    starts = [f[1] for f in entries if f[0] == _START and len(f) == 2]
    others: list[int] = []
    if len(answers) + len(starts) < len(entries):
        join = b"\t".join
        for index, f in enumerate(entries):
            if (f[0] == _ANSWER or f[0] == _START) and len(f) == 2:
                continue
            # an answer in the older form; flags other than 0/1 are normalised by parse_events
            if len(f) == 22 and f[1] == b"ans" and f[::2] == _ANS_KEYS and f[15] in _BITS and f[21] in _BITS:
                answers.append(join(_ANS_VALUES(f)))
            else:
                others.append(index)
    answers_text = _copy_text(answers, _ANSWER_TABS)
    starts_text = _copy_text(starts, _START_TABS)
    if answers_text is None or starts_text is None:
        return None
    return _CopyText(answers_text, starts_text, others)


# what pool.acquire() yields: a proxy forwarding to the Connection it holds
_Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def _copy_rows(conn: _Conn, table: str, rows: list[tuple[Any, ...]] | bytes, columns: Sequence[str]) -> None:
    """COPY ``rows`` into ``table``: records in binary, or a text-format buffer as it is."""
    if isinstance(rows, bytes):
        # a memoryview: asyncpg would take plain bytes for a file name
        # asyncpg takes any buffer too (Connection._copy_in); its stubs list only files and iterables
        await conn.copy_to_table(
            table, source=memoryview(rows), columns=columns,  # type: ignore[arg-type]  # a buffer
        )
    else:
        await conn.copy_records_to_table(table, records=rows, columns=columns)


async def _copy_answers(conn: _Conn, table: str, answers: list[tuple[Any, ...]] | bytes) -> None:
    await _copy_rows(conn, table, answers, ANSWER_COLUMNS)


@contextlib.contextmanager
def _guard() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StorageUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc


class _Rollback(Exception):
    """Raised inside a probe transaction to undo it."""


class PostgresStorage(Storage):
    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout: float = 5.0,
        command_timeout: float = 120.0,
    ) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._pool_args: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": connect_timeout,
            "command_timeout": command_timeout,
        }

    async def open(self) -> None:
        if self._pool is not None:
            return
        with _guard():
            pool = await asyncpg.create_pool(self.url, init=self._init_connection, **self._pool_args)
        try:
            await self._migrate(pool)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    @staticmethod
    async def _init_connection(conn: asyncpg.Connection) -> None:
        await conn.execute(_STAGING)

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        with _guard():
            async with pool.acquire() as conn, conn.transaction():
                # several processes may start at once: one migrates, the others wait on the lock
                await conn.execute("SELECT pg_advisory_xact_lock(7281945001)")
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, sql in MIGRATIONS:
                    if version in done:
                        continue
                    for stmt in render(sql, "postgres"):
                        await conn.execute(stmt)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                    log.info("postgres: applied migration %s", version)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (TimeoutError, *_UNAVAILABLE):
                pool.terminate()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageUnavailable("postgres storage is closed")
        return self._pool

    async def ping(self) -> None:
        with _guard():
            await self.pool.fetchval("SELECT 1", timeout=5)

    def _arg(self, n: int) -> str:
        return f"${n}"

    async def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with _guard():
            return [dict(r) for r in await self.pool.fetch(sql, *args)]

    async def _write_rows(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with _guard():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.executemany(sql, rows)

    # the durable sink -------------------------------------------------------------------------
    # COPYs on separate pool connections overlap: PostgreSQL then works on one batch while the
    # flusher reads, parses and acknowledges the next
    parallel_writes = 2

    async def write_raw(self, entries: list[list[Any]]) -> None:
        """The hot path: answers and starts COPYed in text format straight from the Redis bytes."""
        prepared = _packed_copy_text(entries)
        if prepared is None:
            await super().write_raw(entries)
            return
        text = prepared
        try:
            batch = parse_events([event_from_fields(entries[i]) for i in text.others])
        except (PoisonEvent, ValueError):  # UnicodeDecodeError too
            await super().write_raw(entries)  # it reports the index within ``entries``
            return
        try:
            with _guard():
                async with self.pool.acquire() as conn:
                    try:
                        async with conn.transaction():
                            await self._write_batch(conn, batch, text, direct=True)
                        return
                    except asyncpg.UniqueViolationError:
                        pass  # a replay (or a start behind its finish's placeholder): rows already there
                    async with conn.transaction():
                        await self._write_batch(conn, batch, text)
        except (*_DATA_ERRORS, PoisonEvent):
            # nothing was written: the general path retries, and names the entry it cannot store
            await super().write_raw(entries)

    async def write_events(self, events: list[dict[str, str]]) -> None:
        batch = parse_events(events)
        if not len(batch):
            return
        try:
            with _guard():
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._write_batch(conn, batch)
        except _DATA_ERRORS as exc:
            # refused as data (a value PostgreSQL rejects): find the one entry to dead-letter.
            # Anything else (a missing table, no privilege, disk full) propagates: retrying
            # after an operator fixes it must still find every entry in the stream.
            index = await find_poison(events, self._fails)
            if index is None:
                raise
            raise PoisonEvent(index, f"{type(exc).__name__}: {exc}") from exc

    async def _fails(self, events: list[dict[str, str]]) -> bool:
        try:
            batch = parse_events(events)
            with _guard():
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._write_batch(conn, batch)
                    raise _Rollback
        except _Rollback:
            return False
        except (*_DATA_ERRORS, PoisonEvent):
            return True

    async def _write_batch(self, conn: _Conn, batch: EventBatch, text: _CopyText | None = None, *,
                           direct: bool = False) -> None:
        """One batch inside the caller's transaction (``text``: its packed rows, as COPY text).

        ``direct``: starts and answers are COPYed straight into their tables, as a raw COPY would
        be, with no staging table, ``INSERT .. SELECT`` or savepoint: any row already there (a
        replay after a crash between COMMIT and XACK, an attempt whose finish came first) raises
        UniqueViolationError and fails the whole transaction, which the caller then redoes
        without ``direct``, where every conflict is resolved. Replays are rare; this is the hot path.
        """
        if batch.users:
            rows = [(index, *row) for index, row in zip(batch.user_index, batch.users, strict=True)]
            await conn.copy_records_to_table("stage_users", records=rows, columns=("ord", *USER_COLUMNS))
            await conn.execute(_MOVE_USERS)
            lost = await conn.fetchval(_LOST_USERS)
            if lost is not None:
                raise PoisonEvent(lost, "phone or ext_id belongs to another user")
        starts_text = text.starts if text else b""
        for starts in (batch.starts, starts_text):
            if starts:
                await _copy_rows(conn, "attempts" if direct else "stage_starts", starts, START_COLUMNS)
        if (batch.starts or starts_text) and not direct:
            await conn.execute(_MOVE_STARTS)
        for answers in (batch.answers, text.answers if text else b""):
            if answers and direct:
                await _copy_answers(conn, "answers", answers)
            elif answers:
                await self._write_answers(conn, answers)
        if batch.finishes:
            await conn.copy_records_to_table("stage_fins", records=batch.finishes, columns=FINISH_COLUMNS)
            await conn.execute(_FIN_PLACEHOLDERS)
            await conn.execute(_MOVE_FINS)
        if batch.reviews:
            await conn.copy_records_to_table("stage_reviews", records=batch.reviews, columns=REVIEW_COLUMNS)
            await conn.execute(_REVIEW_PLACEHOLDERS)
            await conn.execute(_MOVE_REVIEWS)
            await conn.execute(_APPLY_REVIEWS)

    async def _write_answers(self, conn: _Conn, answers: list[tuple[Any, ...]] | bytes) -> None:
        """COPY straight into answers; through staging + ON CONFLICT only when that collides.

        A replay (a crash between COMMIT and XACK) is rare, and the direct COPY skips a whole
        INSERT .. SELECT pass over the batch: about twice the rows per second on the hot table.
        The savepoint makes the collision cost one rolled-back COPY, never the whole batch.
        """
        try:
            async with conn.transaction():
                await _copy_answers(conn, "answers", answers)
            return
        except asyncpg.UniqueViolationError:
            pass
        await _copy_answers(conn, "stage_answers", answers)
        await conn.execute(_MOVE_ANSWERS)

    # rebuild support --------------------------------------------------------------------------
    def load_attempts(self, contest_id: str) -> AsyncIterator[dict[str, Any]]:
        sql = f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts WHERE contest_id = $1 ORDER BY started_at"
        return self._records(sql, (contest_id,), ATTEMPT_COLUMNS)

    def load_answers(self, contest_id: str) -> AsyncIterator[dict[str, Any]]:
        # through attempts: answers carry no contest index of their own (it would slow every insert)
        cols = ", ".join(f"a.{c}" for c in ANSWER_COLUMNS)
        sql = (
            f"SELECT {cols} FROM attempts t JOIN answers a ON a.attempt_id = t.attempt_id"
            " WHERE t.contest_id = $1 ORDER BY t.attempt_id, a.idx"
        )
        return self._records(sql, (contest_id,), ANSWER_COLUMNS)

    async def _stream(self, sql: str, args: tuple[Any, ...]) -> AsyncIterator[tuple[Any, ...]]:
        """Rows through a server-side cursor fetched in chunks.

        A SQL-level DECLARE (rather than a protocol portal) makes the planner optimise for the
        first rows (cursor_tuple_fraction), so a 20M-row export walks the indexes in order and
        starts streaming at once instead of hashing and sorting everything first.
        """
        with _guard():
            async with (
                self.pool.acquire() as conn,
                conn.transaction(readonly=True, isolation="repeatable_read"),
            ):
                # one cursor name per query shape: asyncpg caches FETCH's row description by its text
                name = f"export_{zlib.crc32(sql.encode()):08x}"
                await conn.execute("SET LOCAL cursor_tuple_fraction = 0.01")
                await conn.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", *args)
                size = _FIRST_FETCH
                while True:
                    rows = await conn.fetch(f"FETCH {size} FROM {name}")
                    for row in rows:
                        yield tuple(row)
                    if len(rows) < size:
                        break
                    size = _FETCH
