"""The question value object and the import result; no behaviour beyond rendering to dicts."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import RowError

__all__ = [
    "DEFAULT_POINTS",
    "JUDGE_OPTIONS",
    "OPTION_COLUMNS",
    "OPTION_KEYS",
    "QUESTION_TYPES",
    "ImportResult",
    "Question",
]

QUESTION_TYPES = ("single", "multiple", "judge")
# Keys are positional: option_a is always 'A', whatever order a paper shows them in.
OPTION_KEYS = "ABCDEFGH"
OPTION_COLUMNS = tuple(f"option_{k.lower()}" for k in OPTION_KEYS)
JUDGE_OPTIONS = ("正确", "错误")
DEFAULT_POINTS = 10


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    type: str
    stem: str
    options: tuple[str, ...]
    # Correct keys as sorted letters without separators ('B', 'AC'), by original option position.
    answer: str
    category: str | None = None
    difficulty: int | None = None
    points: int = DEFAULT_POINTS
    explanation: str = ""
    # Drawn into an attempt and then edited or deleted: kept (running attempts, reviews and
    # exports show it as served) but never drawn again.  See question_bank.versions.
    retired: bool = False

    def to_dict(self) -> dict[str, object]:
        """Admin-facing form (includes the answer); never send this to a participant."""
        return {
            "id": self.id,
            "type": self.type,
            "stem": self.stem,
            "options": list(self.options),
            "answer": self.answer,
            "category": self.category,
            "difficulty": self.difficulty,
            "points": self.points,
            "explanation": self.explanation,
            "retired": self.retired,
        }


@dataclass(slots=True)
class ImportResult:
    questions: list[Question] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {
            "questions": [q.to_dict() for q in self.questions],
            "errors": [e.to_dict() for e in self.errors],
        }
