"""What the question bank and the org tree (contest/orgtree.py) have in common: an immutable set of
records by id with a version, which an import replaces by a new one with the next version, and
its msgpack snapshot (how a worker hands it to the others through Redis)."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, ClassVar, Generic, Self, TypeVar

import msgpack

__all__ = ["VersionedById"]

Record = TypeVar("Record")


class VersionedById(abc.ABC, Generic[Record]):
    """Lookups by id; two are equal when their versions and records are."""

    __slots__ = ("_by_id", "version")
    # what the records are called in repr() and in a snapshot's errors
    noun: ClassVar[str]
    snapshot_name: ClassVar[str]
    snapshot_error: ClassVar[type[Exception]]
    snapshot_format: ClassVar[int] = 1

    def __init__(self, records: Iterable[Record] = (), version: int = 0) -> None:
        self._by_id = {self.id_of(record): record for record in records}
        self.version = version

    @staticmethod
    @abc.abstractmethod
    def id_of(record: Record) -> str: ...

    @staticmethod
    @abc.abstractmethod
    def row_of(record: Record) -> list[Any]:
        """The record's positional fields in a snapshot."""

    @staticmethod
    @abc.abstractmethod
    def record_of(row: list[Any]) -> Record:
        """A record from its snapshot row (rows written by older versions included)."""

    def get(self, record_id: str) -> Record | None:
        return self._by_id.get(record_id)

    def __getitem__(self, record_id: str) -> Record:
        return self._by_id[record_id]

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.version == other.version and self._by_id == other._by_id

    __hash__ = None  # type: ignore[assignment]  # equal sets compare by content; typeshed's object.__hash__ is a method

    def __repr__(self) -> str:
        return f"<{type(self).__name__} version={self.version} {self.noun}={len(self)}>"

    def to_snapshot(self) -> bytes:
        """Compact msgpack form (positional fields), sorted by id so equal sets give equal bytes."""
        rows = [self.row_of(self._by_id[record_id]) for record_id in sorted(self._by_id)]
        return msgpack.packb([self.snapshot_format, self.version, rows], use_bin_type=True)

    @classmethod
    def from_snapshot(cls, data: bytes) -> Self:
        """The set a snapshot holds; ``snapshot_error`` when it is not one of ours, or of another format."""
        try:
            found, version, rows = msgpack.unpackb(data, raw=False)
            if found != cls.snapshot_format:
                raise cls.snapshot_error(f"unsupported {cls.snapshot_name} snapshot format {found!r}")
            records = [cls.record_of(row) for row in rows]
        except cls.snapshot_error:
            raise
        except (ValueError, TypeError, IndexError, msgpack.UnpackException) as e:
            raise cls.snapshot_error(f"corrupt {cls.snapshot_name} snapshot: {e}") from None
        return cls(records, version)
