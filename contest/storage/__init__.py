"""Durable storage: SQLite (embedded default) or PostgreSQL, chosen by the database URL."""

from __future__ import annotations

from contest.storage.base import PoisonEvent, Storage, StorageUnavailable

__all__ = ["PoisonEvent", "Storage", "StorageUnavailable", "open_storage"]


def open_storage(url: str) -> Storage:
    """A storage for ``sqlite:///path`` or ``postgresql://...``; call ``await storage.open()`` next.

    The backends are imported lazily so a SQLite deployment never needs asyncpg installed.
    """
    if url.startswith("sqlite:///"):
        from contest.storage.sqlite import SqliteStorage

        # sqlite:///rel/path.db is relative, sqlite:////abs/path.db absolute (the SQLAlchemy convention)
        return SqliteStorage(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        from contest.storage.postgres import PostgresStorage

        return PostgresStorage(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")
