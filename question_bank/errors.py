"""Domain errors of the question bank; the web layer maps them to the API's error shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ImportFormatError",
    "PaperError",
    "QuestionBankError",
    "RowError",
    "SnapshotError",
]


class QuestionBankError(ValueError):
    """Base class, so callers can catch everything this package raises on bad input."""


class ImportFormatError(QuestionBankError):
    """The file as a whole cannot be read (unknown format, bad encoding, unsafe archive...)."""

    def __init__(self, message: str, code: str = "file_format", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class PaperError(QuestionBankError):
    """The draw rules cannot be satisfied by the bank."""


class SnapshotError(QuestionBankError):
    """A snapshot blob is not one we wrote (or is from an incompatible version)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad field of one row.

    ``row`` is what a spreadsheet user sees (header = 1, first data row = 2; JSON: 1-based
    position in the array; 0 for file-level problems such as too many rows).
    """

    row: int
    column: str
    message: str
    # stable snake_case code and its parameters: the web layer words the message in the reader's
    # language from these (the English ``message`` is the default)
    code: str = "invalid"
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
