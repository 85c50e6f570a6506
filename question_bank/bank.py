"""The in-memory question bank of one worker: lookups, (category, difficulty) indexes, msgpack snapshots."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .errors import SnapshotError
from .model import Question
from .versioned import VersionedById

__all__ = ["Cell", "QuestionBank"]

# (category, difficulty) of a question; both may be None.
Cell = tuple[str | None, int | None]
T = TypeVar("T")

_MEMO_LIMIT = 256


class QuestionBank(VersionedById[Question]):
    """Immutable once built; an import produces a new bank (``merged``) with a new version."""

    __slots__ = ("_by_cell", "_candidates", "_memo")
    noun = "questions"
    snapshot_name = "question bank"
    snapshot_error = SnapshotError

    def __init__(self, questions: Iterable[Question] = (), version: int = 0) -> None:
        super().__init__(questions, version)
        by_cell: dict[Cell, list[str]] = {}
        for q in self._by_id.values():
            if q.retired:
                continue  # kept for lookups by id (attempts that served it), never drawn
            by_cell.setdefault((q.category, q.difficulty), []).append(q.id)
        # Sorted so that seeded draws do not depend on insertion or dict order.
        self._by_cell: dict[Cell, tuple[str, ...]] = {
            cell: tuple(sorted(ids)) for cell, ids in by_cell.items()
        }
        self._candidates: dict[Cell, tuple[str, ...]] = {}
        self._memo: dict[object, Any] = {}

    @staticmethod
    def id_of(record: Question) -> str:
        return record.id

    @staticmethod
    def row_of(record: Question) -> list[Any]:
        return [
            record.id,
            record.type,
            record.stem,
            list(record.options),
            record.answer,
            record.category,
            record.difficulty,
            record.points,
            record.explanation,
            *([True] if record.retired else []),  # a 10th field only when retired: old readers stay compatible
        ]

    @staticmethod
    def record_of(row: list[Any]) -> Question:
        return Question(row[0], row[1], row[2], tuple(row[3]), row[4], row[5], row[6], row[7], row[8],
                        retired=bool(row[9:10] and row[9]))

    @classmethod
    def from_questions(cls, questions: Iterable[Question], version: int = 0) -> QuestionBank:
        return cls(questions, version)

    def questions(self) -> list[Question]:
        """All questions, sorted by id."""
        return [self._by_id[i] for i in sorted(self._by_id)]

    def categories(self) -> list[str]:
        """Distinct non-empty categories, sorted."""
        return sorted({cat for cat, _ in self._by_cell if cat is not None})

    def cells(self) -> dict[Cell, int]:
        """Number of questions per (category, difficulty)."""
        return {cell: len(ids) for cell, ids in self._by_cell.items()}

    def cell_ids(self, category: str | None, difficulty: int | None) -> tuple[str, ...]:
        """Sorted ids whose category and difficulty are exactly these (None means "not set")."""
        return self._by_cell.get((category, difficulty), ())

    def count(self, category: str | None = None, difficulty: int | None = None) -> int:
        """Questions matching both filters (None matches anything)."""
        return len(self.candidates(category, difficulty))

    def candidates(self, category: str | None = None, difficulty: int | None = None) -> tuple[str, ...]:
        """Sorted ids matching the filters (None matches anything); computed once per filter."""
        key = (category, difficulty)
        found = self._candidates.get(key)
        if found is None:
            ids = [
                qid
                for (cat, diff), cell_ids in self._by_cell.items()
                if (category is None or cat == category) and (difficulty is None or diff == difficulty)
                for qid in cell_ids
            ]
            found = self._candidates[key] = tuple(sorted(ids))
        return found

    def memo(self, key: object, build: Callable[[], T]) -> T:
        """Cache a value derived from this (immutable) bank, e.g. a paper plan per rule set."""
        try:
            found: T = self._memo[key]
            return found
        except KeyError:
            pass
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()  # rule sets come from a handful of contests; this only bounds abuse
        value = self._memo[key] = build()
        return value

    def merged(
        self, new_questions: Iterable[Question], *, version: int | None = None
    ) -> tuple[QuestionBank, int, int]:
        """A new bank with ``new_questions`` upserted by id: (bank, imported, updated).

        ``imported`` counts ids new to the bank, ``updated`` ids that were already there.
        The new bank's version is ``version`` or this version + 1.
        """
        by_id = dict(self._by_id)
        fresh = {q.id: q for q in new_questions}
        updated = sum(1 for qid in fresh if qid in by_id)
        by_id.update(fresh)
        bank = QuestionBank(by_id.values(), self.version + 1 if version is None else version)
        return bank, len(fresh) - updated, updated
