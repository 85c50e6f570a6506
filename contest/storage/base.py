"""The storage interface, the statements and row builders both backends share (each gives only
its placeholder, a query, a batch write and a stream: ``Storage._arg`` and the three below it),
the errors, and event parsing.

Events arrive as the flat ``dict[str, str]`` entries of docs/events.md.  ``parse_events`` turns
one batch into per-table row tuples (validating every number once, in Python) so a backend only
has to move tuples; a bad entry is reported by its index as ``PoisonEvent`` so the flusher can
dead-letter exactly that entry and retry the rest.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from contest.errors import Unavailable
from leaderboard.entries import PACKED_KINDS, unpack_entry

__all__ = [
    "ANSWER_COLUMNS",
    "ATTEMPT_COLUMNS",
    "CERTIFICATE_COLUMNS",
    "CERTIFICATE_SELECT",
    "ORG_COLUMNS",
    "QUESTION_COLUMNS",
    "EventBatch",
    "PoisonEvent",
    "Storage",
    "StorageUnavailable",
    "event_from_fields",
    "find_poison",
    "org_rows",
    "parse_events",
    "prefix_upper_bound",
    "question_rows",
]

log = logging.getLogger(__name__)

CERTIFICATE_COLUMNS = ("serial", "attempt_id", "contest_id", "user_id", "name", "org_id", "org_name", "score",
                       "rank", "title", "issued_at")
# a certificate with what verification needs: is its attempt voided, and why (the latest void)
CERTIFICATE_SELECT = (
    "SELECT c.serial, c.attempt_id, c.contest_id, c.user_id, c.name, c.org_id, c.org_name, c.score, c.rank,"
    " c.title, c.issued_at, COALESCE(t.voided, 0) AS voided,"
    " (SELECT r.reason FROM reviews r WHERE r.attempt_id = c.attempt_id AND r.action = 'void'"
    " ORDER BY r.at DESC LIMIT 1) AS reason"
    " FROM certificates c LEFT JOIN attempts t ON t.attempt_id = c.attempt_id")

START_COLUMNS = (
    "attempt_id",
    "contest_id",
    "user_id",
    "org_id",
    "org_path",
    "started_at",
    "deadline_at",
    "day",
    "paper",
)
# an attempt's row: what its start event writes, then what its finish and reviews fill in
ATTEMPT_COLUMNS = (
    *START_COLUMNS,
    "finished_at",
    "score",
    "correct_count",
    "question_count",
    "duration_ms",
    "auto_finished",
    "counted",
    "voided",
)
ANSWER_COLUMNS = (
    "attempt_id",
    "idx",
    "contest_id",
    "user_id",
    "question_id",
    "choice",
    "correct",
    "points_awarded",
    "answered_at",
    "flagged",
)
FINISH_COLUMNS = (
    "attempt_id",
    "contest_id",
    "user_id",
    "score",
    "correct_count",
    "question_count",
    "duration_ms",
    "finished_at",
    "auto_finished",
    "counted",
)
USER_COLUMNS = ("user_id", "name", "phone", "ext_id", "org_id", "created_at")
REVIEW_COLUMNS = ("contest_id", "attempt_id", "action", "reason", "by", "at")

_I32 = 2**31 - 1
_I64 = 2**63 - 1


class StorageUnavailable(Unavailable):
    """The database cannot be reached; nothing was written. The web layer answers 503 with its
    own words (the message names the driver's error, for the log only)."""


class PoisonEvent(Exception):
    """Event ``index`` of a batch can never be stored (bad number, missing field...)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"event {index}: {message}")
        self.index = index
        self.message = message


@dataclass(slots=True)
class EventBatch:
    """One batch of events as row tuples in the column orders above, duplicates removed."""

    users: list[tuple[Any, ...]] = field(default_factory=list[Any])
    user_index: list[int] = field(default_factory=list)  # event index of each users row
    starts: list[tuple[Any, ...]] = field(default_factory=list[Any])
    answers: list[tuple[Any, ...]] = field(default_factory=list[Any])
    finishes: list[tuple[Any, ...]] = field(default_factory=list[Any])
    reviews: list[tuple[Any, ...]] = field(default_factory=list[Any])

    def __len__(self) -> int:
        return len(self.users) + len(self.starts) + len(self.answers) + len(self.finishes) + len(self.reviews)


def _i32(value: str) -> int:
    number = int(value)
    if -_I32 <= number <= _I32:
        return number
    raise ValueError(f"{value} out of range")


def _i64(value: str) -> int:
    number = int(value)
    if -_I64 <= number <= _I64:
        return number
    raise ValueError(f"{value} out of range")


def _flag(event: Mapping[str, str], key: str, default: str = "0") -> int:
    return 1 if (event.get(key) or default) == "1" else 0


def parse_events(events: Sequence[Mapping[str, str]]) -> EventBatch:
    """Rows for every table; raises PoisonEvent(index) for the first invalid event."""
    batch = EventBatch()
    seen_users: set[str] = set()
    starts: dict[str, tuple[Any, ...]] = {}
    answers = batch.answers
    for index, e in enumerate(events):
        try:
            kind = e["t"]
            # answers outnumber everything else by far: test for them first, build inline
            if kind == "ans":
                answers.append(
                    (
                        e["aid"],
                        _i32(e["i"]),
                        e["cid"],
                        e["uid"],
                        e["qid"],
                        e["ch"],
                        _flag(e, "ok"),
                        _i32(e["pts"]),
                        _i64(e["at"]),
                        _flag(e, "fl"),
                    )
                )
            elif kind == "start":
                starts.setdefault(
                    e["aid"],
                    (
                        e["aid"],
                        e["cid"],
                        e["uid"],
                        e["org"],
                        e["path"],
                        _i64(e["at"]),
                        _i64(e["dl"]),
                        e.get("day") or None,
                        e.get("paper") or None,
                    ),
                )
            elif kind == "fin":
                batch.finishes.append(
                    (
                        e["aid"],
                        e["cid"],
                        e["uid"],
                        _i32(e["score"]),
                        _i32(e["cc"]),
                        _i32(e["qc"]),
                        _i64(e["dur"]),
                        _i64(e["at"]),
                        _flag(e, "auto"),
                        _flag(e, "counted", "1"),
                    )
                )
            elif kind == "user":
                if e["uid"] not in seen_users:
                    seen_users.add(e["uid"])
                    batch.users.append(
                        (
                            e["uid"],
                            e["name"],
                            e.get("phone") or None,
                            e.get("ext") or None,
                            e.get("org") or None,
                            _i64(e["at"]),
                        )
                    )
                    batch.user_index.append(index)
            elif kind == "void":
                action = e.get("action") or ("restore" if e.get("undo") == "1" else "void")
                if action not in ("void", "restore", "clear"):
                    raise ValueError(f"unknown review action {action!r}")
                batch.reviews.append(
                    (e["cid"], e["aid"], action, e.get("reason") or "", e.get("by") or "", _i64(e["at"]))
                )
            else:
                raise PoisonEvent(index, f"unknown event type {kind!r}")
        except KeyError as exc:
            raise PoisonEvent(index, f"missing field {exc.args[0]!r}") from None
        except (ValueError, TypeError) as exc:
            raise PoisonEvent(index, f"bad value: {exc}") from None
    batch.starts = list(starts.values())
    return batch


def event_from_fields(fields: Any) -> dict[str, str]:
    """One stream entry as docs/events.md's ``dict[str, str]``, from a flat ``[name, value, ...]``
    list (the raw XREADGROUP reply) or a mapping, of bytes or str. A packed entry
    (leaderboard/entries.py) comes out as the event it holds; ValueError (UnicodeDecodeError
    among them) when an entry cannot be read at all."""
    event = _event_fields(fields)
    if "t" not in event and len(event) == 1:
        [(name, value)] = event.items()
        if name in PACKED_KINDS:
            return unpack_entry(name, value)
    return event


def _event_fields(fields: Any) -> dict[str, str]:
    if isinstance(fields, list) and fields:
        # one decode of the joined entry instead of one per name and value (raises the same
        # UnicodeDecodeError: a NUL cannot complete a broken UTF-8 sequence); a NUL inside a
        # value shows as an extra part, and str items refuse the join: both take the general path
        try:
            parts = b"\0".join(fields).decode().split("\0")
        except TypeError:
            parts = []
        if len(parts) == len(fields):
            return dict(zip(parts[::2], parts[1::2], strict=False))
    items = fields.items() if isinstance(fields, Mapping) else zip(*[iter(fields)] * 2, strict=False)
    return {_text(k): _text(v) for k, v in items}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (bytewise order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


async def find_poison(
    events: list[dict[str, str]], fails: Callable[[list[dict[str, str]]], Awaitable[bool]]
) -> int | None:
    """Bisect a batch the database refused as a whole down to the one event it refuses.

    ``fails(subset)`` must try the write and roll it back. Returns None when no single event
    fails on its own (the refusal came from a combination; retrying cannot be narrowed).
    """
    lo, hi = 0, len(events)
    if not await fails(events):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if await fails(events[lo:mid]):
            hi = mid
        elif await fails(events[mid:hi]):
            lo = mid
        else:
            return None
    return lo


# rows streamed from the database as they are read; a generator, so a reader that stops early can aclose() it
RowStream = AsyncGenerator[tuple[Any, ...], None]


class ResultRows(Protocol):
    """What exports and lottery draws read rows from: a Storage, or review.FilteredResults over one."""

    def iter_results(self, contest_id: str, org_path_prefix: str | None) -> RowStream: ...

    def iter_answers(self, contest_id: str, org_path_prefix: str | None) -> RowStream: ...


class Storage(abc.ABC):
    """Durable storage: admin data, the event sink of the flusher, rebuild reads and exports."""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StorageUnavailable when the database does not answer."""

    async def __aenter__(self) -> Storage:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # what each backend provides to the shared queries below
    @abc.abstractmethod
    def _arg(self, n: int) -> str:
        """The placeholder of the n-th query argument (from 1): ``$n`` or ``?``."""

    @abc.abstractmethod
    async def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one statement, each as a dict by column name."""

    @abc.abstractmethod
    async def _write_rows(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for each row, all in one transaction."""

    @abc.abstractmethod
    def _stream(self, sql: str, args: tuple[Any, ...]) -> AsyncIterator[tuple[Any, ...]]:
        """The rows of a large read (an export, a rebuild) in chunks, without loading them all."""

    async def _records(self, sql: str, args: tuple[Any, ...], columns: Sequence[str]) -> AsyncIterator[dict[str, Any]]:
        """``_stream``'s rows as dicts by column name."""
        async for row in self._stream(sql, args):
            yield dict(zip(columns, row, strict=True))

    def _sql(self, template: str, **parts: str) -> str:
        """``template`` with ``{a1}``, ``{a2}``... as this backend's placeholders, ``parts`` filled in."""
        return template.format(**{f"a{n}": self._arg(n) for n in range(1, _MAX_ARGS + 1)}, **parts)

    def _path_filter(self, template: str, contest_id: str, prefix: str | None,
                     **parts: str) -> tuple[str, tuple[Any, ...]]:
        """A contest's query, limited to an org subtree (the org path range of ``prefix``) when given."""
        if not prefix:
            return self._sql(template, path="", **parts), (contest_id,)
        return self._sql(template, path=self._sql(_PATH), **parts), (contest_id, prefix, prefix_upper_bound(prefix))

    # admin data
    async def save_orgs(self, orgs: list[dict[str, Any]]) -> None:
        await self._write_rows(self._sql(_UPSERT_ORG), org_rows(orgs))

    async def load_orgs(self) -> list[dict[str, Any]]:
        return await self._query(f"SELECT {', '.join(ORG_COLUMNS)} FROM orgs ORDER BY org_id")

    async def save_questions(self, questions: list[dict[str, Any]]) -> None:
        await self._write_rows(self._sql(_UPSERT_QUESTION), question_rows(questions))

    async def load_questions(self) -> list[dict[str, Any]]:
        rows = await self._query(f"SELECT {', '.join(QUESTION_COLUMNS)} FROM questions ORDER BY id")
        for row in rows:
            row["options"] = orjson.loads(row["options"])
        return rows

    async def save_contest(self, contest_id: str, config: dict[str, Any], status: str) -> None:
        await self._write_rows(self._sql(_UPSERT_CONTEST), [(contest_id, orjson.dumps(config).decode(), status)])

    async def load_contests(self) -> list[dict[str, Any]]:
        rows = await self._query("SELECT contest_id, config, status FROM contests ORDER BY contest_id")
        for row in rows:
            row["config"] = orjson.loads(row["config"])
        return rows

    # the durable sink
    @abc.abstractmethod
    async def write_events(self, events: list[dict[str, str]]) -> None:
        """Store one batch in one transaction, idempotently.

        Raises StorageUnavailable (connection trouble, nothing written) or PoisonEvent(index)
        (that event can never be stored; nothing written).
        """

    # How many write_raw/write_events calls the flusher may have in flight at once (separate
    # transactions). 1 for a backend that serialises its writes anyway.
    parallel_writes: int = 1

    async def write_raw(self, entries: list[list[Any]]) -> None:
        """``write_events`` for entries still as the flat ``[name, value, ...]`` lists of the raw
        XREADGROUP reply; PoisonEvent indexes refer to ``entries``. A backend may override it to
        skip building a dict per entry on its hot path."""
        events = []
        for index, fields in enumerate(entries):
            try:
                events.append(event_from_fields(fields))
            except ValueError as exc:  # UnicodeDecodeError, or a packed entry of the wrong shape
                raise PoisonEvent(index, f"bad value: {exc}") from None
        await self.write_events(events)

    # rebuild support
    async def load_users(self, after_user_id: str | None, limit: int) -> list[dict[str, Any]]:
        sql = self._sql(f"SELECT {', '.join(USER_COLUMNS)} FROM users WHERE user_id > {{a1}} ORDER BY user_id"
                        " LIMIT {a2}")
        return await self._query(sql, (after_user_id or "", limit))

    @abc.abstractmethod
    def load_attempts(self, contest_id: str) -> AsyncIterator[dict[str, Any]]: ...

    @abc.abstractmethod
    def load_answers(self, contest_id: str) -> AsyncIterator[dict[str, Any]]: ...

    async def count_rows(self, contest_id: str | None = None) -> dict[str, int]:
        """Rows in the database: users, attempts, finished attempts, answers; of one contest, its
        participants as users."""
        if contest_id is None:
            rows = await self._query(_COUNT_ALL)
        else:
            rows = await self._query(self._sql(_COUNT_CONTEST), (contest_id,) * 4)
        return {name: int(rows[0][name]) for name in ("users", "attempts", "finished", "answers")}

    # reviews (contest/review.py)
    async def load_attempt(self, attempt_id: str) -> dict[str, Any] | None:
        """One attempt row (ATTEMPT_COLUMNS) or None."""
        sql = self._sql(f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts WHERE attempt_id = {{a1}}")
        rows = await self._query(sql, (attempt_id,))
        return rows[0] if rows else None

    async def load_reviews(self, contest_id: str) -> list[dict[str, Any]]:
        """The review audit log of a contest (REVIEW_COLUMNS), oldest first."""
        sql = self._sql(f"SELECT {', '.join(_quoted(REVIEW_COLUMNS))} FROM reviews WHERE contest_id = {{a1}}"
                        " ORDER BY at, attempt_id")
        return await self._query(sql, (contest_id,))

    # the dashboard's figures of an org subtree (contest/stats.py)
    async def subtree_figures(self, contest_id: str, org_path_prefix: str, since_ms: int) -> dict[str, Any]:
        """Answers of the subtree aggregated by the database: ``answers``, ``correct``, ``flagged``,
        ``recent`` (answered at or after ``since_ms``), ``questions`` [(question_id, answers,
        correct)], ``answer_minutes`` and ``finish_minutes`` [(minute since the epoch, count)]."""
        rows = {}
        for name, template in _SUBTREE_TEMPLATES.items():
            sql, args = self._path_filter(template, contest_id, org_path_prefix, since=str(int(since_ms)))
            rows[name] = await self._query(sql, args)
        return _subtree_result(rows)

    # a participant's own review and certificates (contest/recap.py, contest/certificates.py)
    async def load_attempt_answers(self, attempt_id: str) -> list[dict[str, Any]]:
        """The answers of one attempt (idx, question_id, choice, correct, points_awarded), by index."""
        sql = self._sql("SELECT idx, question_id, choice, correct, points_awarded, answered_at FROM answers"
                        " WHERE attempt_id = {a1} ORDER BY idx")
        return await self._query(sql, (attempt_id,))

    async def save_certificate(self, row: dict[str, Any]) -> dict[str, Any]:
        """Store a certificate unless its attempt has one; the stored row either way (CERTIFICATE_COLUMNS)."""
        marks = ", ".join(self._arg(n) for n in range(1, len(CERTIFICATE_COLUMNS) + 1))
        await self._write_rows(f"INSERT INTO certificates ({', '.join(CERTIFICATE_COLUMNS)}) VALUES ({marks})"
                               " ON CONFLICT (attempt_id) DO NOTHING", [tuple(row[c] for c in CERTIFICATE_COLUMNS)])
        sql = self._sql(f"SELECT {', '.join(CERTIFICATE_COLUMNS)} FROM certificates WHERE attempt_id = {{a1}}")
        return (await self._query(sql, (row["attempt_id"],)))[0]

    async def load_certificate(self, serial: str) -> dict[str, Any] | None:
        """A certificate with its attempt's ``voided`` flag and the latest void ``reason``, or None."""
        rows = await self._query(CERTIFICATE_SELECT + self._sql(" WHERE c.serial = {a1}"), (serial,))
        return rows[0] if rows else None

    # exports, in org path order so a subtree is one range
    async def iter_results(self, contest_id: str, org_path_prefix: str | None) -> RowStream:
        sql, args = self._path_filter(_RESULTS, contest_id, org_path_prefix)
        async for row in self._stream(sql, args):
            yield row

    async def iter_answers(self, contest_id: str, org_path_prefix: str | None) -> RowStream:
        sql, args = self._path_filter(_ANSWERS, contest_id, org_path_prefix)
        async for row in self._stream(sql, args):
            yield row


# The admin data as rows, in the column orders of the tables; each backend fills in its
# placeholders ({a1}... in the statements below and ``Storage._sql``).
ORG_COLUMNS = ("org_id", "parent_id", "name", "level", "members", "accepts_members")
QUESTION_COLUMNS = ("id", "type", "stem", "options", "answer", "category", "difficulty", "points", "explanation")


def org_rows(orgs: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The orgs table's rows (ORG_COLUMNS) of imported orgs."""
    return [
        (o["org_id"], o.get("parent_id") or None, o["name"], int(o["level"]), int(o.get("members") or 0),
         1 if o.get("accepts_members") else 0)
        for o in orgs
    ]


def question_rows(questions: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The questions table's rows (QUESTION_COLUMNS); options as a JSON array."""
    return [
        (q["id"], q["type"], q["stem"], orjson.dumps(list(q.get("options") or [])).decode(), q["answer"],
         q.get("category"), q.get("difficulty"), int(q.get("points") or 10), q.get("explanation"))
        for q in questions
    ]


def _upsert(table: str, columns: Sequence[str], key: str) -> str:
    """Insert rows, or replace every other column of the row with the same ``key``."""
    marks = ",".join(f"{{a{n}}}" for n in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {updates}"


def _quoted(columns: Sequence[str]) -> list[str]:
    return [f'"{c}"' if c == "by" else c for c in columns]  # "by" is an SQL keyword


_MAX_ARGS = len(QUESTION_COLUMNS)  # the most arguments of a statement written with {a1}...
_UPSERT_ORG = _upsert("orgs", ORG_COLUMNS, "org_id")
_UPSERT_QUESTION = _upsert("questions", QUESTION_COLUMNS, "id")
_UPSERT_CONTEST = _upsert("contests", ("contest_id", "config", "status"), "contest_id")

_RESULTS = (
    "SELECT t.attempt_id, t.user_id, u.name, t.org_id, t.score, t.correct_count, t.question_count,"
    " t.duration_ms, t.started_at, t.finished_at, t.voided,"
    " (SELECT count(*) FROM answers a WHERE a.attempt_id = t.attempt_id AND a.flagged = 1)"
    " FROM attempts t LEFT JOIN users u ON u.user_id = t.user_id"
    " WHERE t.contest_id = {a1} AND t.finished_at IS NOT NULL{path} ORDER BY t.org_path, t.attempt_id"
)
_ANSWERS = (
    "SELECT a.attempt_id, a.user_id, a.idx, a.question_id, a.choice, a.correct, a.points_awarded,"
    " a.answered_at, a.flagged FROM attempts t JOIN answers a ON a.attempt_id = t.attempt_id"
    " WHERE t.contest_id = {a1}{path} ORDER BY t.org_path, t.attempt_id, a.idx"
)
_PATH = " AND t.org_path >= {a2} AND t.org_path < {a3}"
_COUNT_ALL = (
    "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM attempts) AS attempts,"
    " (SELECT count(*) FROM attempts WHERE finished_at IS NOT NULL) AS finished,"
    " (SELECT count(*) FROM answers) AS answers"
)
# the answers through attempts: PostgreSQL's answers carry no contest id of their own
_COUNT_CONTEST = (
    "SELECT (SELECT count(DISTINCT user_id) FROM attempts WHERE contest_id = {a1}) AS users,"
    " (SELECT count(*) FROM attempts WHERE contest_id = {a2}) AS attempts,"
    " (SELECT count(*) FROM attempts WHERE contest_id = {a3} AND finished_at IS NOT NULL) AS finished,"
    " (SELECT count(*) FROM answers a JOIN attempts t ON t.attempt_id = a.attempt_id"
    "  WHERE t.contest_id = {a4}) AS answers"
)


# the dashboard's figures of an org subtree, aggregated by the database (not row by row in
# Python); ``{path}`` is the subtree's range (``_PATH``), ``{since}`` the caller's
_SUBTREE_FROM = " FROM attempts t JOIN answers a ON a.attempt_id = t.attempt_id WHERE t.contest_id = {a1}{path}"
_SUBTREE_TEMPLATES = {
    "totals": "SELECT count(*) AS n, coalesce(sum(a.correct), 0) AS c, coalesce(sum(a.flagged), 0) AS f,"
              " coalesce(sum(CASE WHEN a.answered_at >= {since} THEN 1 ELSE 0 END), 0) AS r" + _SUBTREE_FROM,
    "questions": "SELECT a.question_id AS q, count(*) AS n, coalesce(sum(a.correct), 0) AS c" + _SUBTREE_FROM
                 + " GROUP BY a.question_id",
    "answer_minutes": "SELECT a.answered_at / 60000 AS m, count(*) AS n" + _SUBTREE_FROM
                      + " AND a.answered_at IS NOT NULL GROUP BY a.answered_at / 60000",
    "finish_minutes": "SELECT t.finished_at / 60000 AS m, count(*) AS n FROM attempts t WHERE t.contest_id = {a1}"
                      " AND t.finished_at IS NOT NULL{path} GROUP BY t.finished_at / 60000",
}


def _subtree_result(rows: dict[str, Any]) -> dict[str, Any]:
    """The subtree queries' rows (by name) as the dashboard's figures."""
    totals = rows["totals"][0]
    return {"answers": int(totals["n"]), "correct": int(totals["c"]), "flagged": int(totals["f"]),
            "recent": int(totals["r"]),
            "questions": [(str(r["q"]), int(r["n"]), int(r["c"])) for r in rows["questions"]],
            "answer_minutes": [(int(r["m"]), int(r["n"])) for r in rows["answer_minutes"]],
            "finish_minutes": [(int(r["m"]), int(r["n"])) for r in rows["finish_minutes"]]}
