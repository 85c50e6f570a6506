"""Numbered schema migrations shared by the SQLite and PostgreSQL backends.

The SQL is written in the dialect both engines accept; the few differences are placeholders
filled per backend by ``render``:

- ``{collate_c}``: org paths must compare bytewise so the subtree filter
  ``org_path >= prefix AND org_path < upper`` is a plain btree range.  SQLite's default BINARY
  collation already does that; PostgreSQL needs ``COLLATE "C"`` whatever the database locale.

Append new migrations at the end with the next number; never edit one that has shipped.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "render"]

_V1 = """
CREATE TABLE IF NOT EXISTS orgs (
    org_id    TEXT PRIMARY KEY,
    parent_id TEXT,
    name      TEXT NOT NULL,
    level     INTEGER NOT NULL,
    members   BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS questions (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    stem        TEXT NOT NULL,
    options     TEXT NOT NULL,
    answer      TEXT NOT NULL,
    category    TEXT,
    difficulty  INTEGER,
    points      INTEGER NOT NULL DEFAULT 10,
    explanation TEXT
);
CREATE TABLE IF NOT EXISTS contests (
    contest_id TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    status     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_id    TEXT PRIMARY KEY,
    name       TEXT,
    phone      TEXT UNIQUE,
    ext_id     TEXT UNIQUE,
    org_id     TEXT,
    created_at BIGINT
);
CREATE TABLE IF NOT EXISTS attempts (
    attempt_id     TEXT PRIMARY KEY,
    contest_id     TEXT NOT NULL,
    user_id        TEXT,
    org_id         TEXT,
    org_path       TEXT {collate_c},
    started_at     BIGINT,
    deadline_at    BIGINT,
    day            TEXT,
    paper          TEXT,
    finished_at    BIGINT,
    score          INTEGER,
    correct_count  INTEGER,
    question_count INTEGER,
    duration_ms    BIGINT,
    auto_finished  SMALLINT,
    counted        SMALLINT,
    voided         SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attempts_contest_path ON attempts (contest_id, org_path, attempt_id);
CREATE INDEX IF NOT EXISTS attempts_contest_started ON attempts (contest_id, started_at);
CREATE TABLE IF NOT EXISTS answers (
    attempt_id     TEXT NOT NULL,
    idx            INTEGER NOT NULL,
    contest_id     TEXT NOT NULL,
    user_id        TEXT,
    question_id    TEXT,
    choice         TEXT,
    correct        SMALLINT,
    points_awarded INTEGER,
    answered_at    BIGINT,
    flagged        SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (attempt_id, idx)
);
CREATE TABLE IF NOT EXISTS reviews (
    contest_id TEXT NOT NULL,
    attempt_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    reason     TEXT,
    "by"       TEXT,
    at         BIGINT NOT NULL,
    PRIMARY KEY (attempt_id, at, action)
);
"""

# (version, sql); applied in order inside one transaction each, recorded in schema_migrations.
# certificates (issue 15 item 3): one per attempt, found by its unguessable serial
_V2 = """
CREATE TABLE IF NOT EXISTS certificates (
    serial     TEXT PRIMARY KEY,
    attempt_id TEXT NOT NULL UNIQUE,
    contest_id TEXT NOT NULL,
    user_id    TEXT,
    name       TEXT,
    org_id     TEXT,
    org_name   TEXT,
    score      INTEGER,
    rank       INTEGER,
    title      TEXT,
    issued_at  BIGINT NOT NULL
);
"""

# Units with children that participants may join too (the org import's accepts_members column)
_V3 = """
ALTER TABLE orgs ADD COLUMN accepts_members INTEGER NOT NULL DEFAULT 0;
"""

MIGRATIONS: list[tuple[int, str]] = [
    (1, _V1),
    (2, _V2),
    (3, _V3),
]

_DIALECT = {
    "sqlite": {"collate_c": ""},
    "postgres": {"collate_c": 'COLLATE "C"'},
}


def render(sql: str, dialect: str) -> list[str]:
    """The statements of one migration for ``dialect`` ("sqlite" or "postgres")."""
    text = sql.format(**_DIALECT[dialect])
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]
