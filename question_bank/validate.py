"""Turning decoded rows into Questions: value spellings, per-field checks, one RowError per bad field."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping

from .errors import RowError
from .model import DEFAULT_POINTS, JUDGE_OPTIONS, OPTION_COLUMNS, OPTION_KEYS, ImportResult, Question
from .parse import normalize_header, read_table

__all__ = [
    "HEADER_ALIASES",
    "MAX_POINTS",
    "REQUIRED_COLUMNS",
    "make_question_id",
    "parse_questions",
    "validate_rows",
]

MAX_POINTS = 1000
REQUIRED_COLUMNS = ("type", "stem", "answer")


def _aliases() -> dict[str, str]:
    spellings = {
        "id": ["id", "编号", "题号", "试题编号", "question_id"],
        "type": ["type", "题型", "类型", "试题类型", "question_type"],
        "stem": ["stem", "题干", "题目", "试题", "题目内容", "question"],
        "options": ["options", "选项"],
        "answer": ["answer", "答案", "正确答案", "标准答案"],
        "category": ["category", "分类", "类别", "题目分类"],
        "difficulty": ["difficulty", "难度", "难易度", "难易程度"],
        "points": ["points", "point", "score", "分值", "分数"],
        "explanation": ["explanation", "解析", "答案解析", "analysis"],
    }
    for key, column in zip(OPTION_KEYS, OPTION_COLUMNS, strict=True):
        spellings[column] = [column, f"option {key}", key, f"选项{key}"]
    return {normalize_header(s): column for column, names in spellings.items() for s in names}


# Normalized header spelling -> schema column name.
HEADER_ALIASES: dict[str, str] = _aliases()

_TYPES = {
    **dict.fromkeys(["single", "单选", "单选题", "单项选择", "单项选择题", "radio"], "single"),
    **dict.fromkeys(
        ["multiple", "multi", "多选", "多选题", "多项选择", "多项选择题", "checkbox"], "multiple"
    ),
    **dict.fromkeys(["judge", "判断", "判断题", "truefalse", "true/false", "tf"], "judge"),
}
_TRUE = {"对", "正确", "true", "t", "√", "✓", "✔", "yes", "y", "是", "1"}
_FALSE = {"错", "错误", "false", "f", "×", "✗", "✘", "no", "n", "否", "0"}
_DIFFICULTY_WORDS = {
    "easy": 1,
    "易": 1,
    "简单": 1,
    "medium": 3,
    "中": 3,
    "中等": 3,
    "hard": 5,
    "难": 5,
    "困难": 5,
}
_ANSWER_SEPARATORS = re.compile(r"[\s,;、/|]+")
_ID_RE = re.compile(r"[\w.:\-]{1,64}")


def _match_key(qtype: str, stem: str, options: Iterable[str]) -> str:
    def fold(text: str) -> str:
        return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())

    return make_question_id(qtype, fold(stem), [fold(o) for o in options])


def make_question_id(qtype: str, stem: str, options: Iterable[str]) -> str:
    """Stable id for rows without one, so re-importing the same file updates instead of duplicating."""
    digest = hashlib.sha1("\x1f".join([qtype, stem, *options]).encode("utf-8")).hexdigest()
    return "q" + digest[:12]


def parse_questions(
    data: bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    max_rows: int = 100_000,
    max_cell_chars: int = 10_000,
) -> ImportResult:
    """Decode and validate an uploaded question file; raises ImportFormatError if it is unreadable.

    Returns every valid question and every row error; importing only when there are no
    errors (all or nothing) is the caller's decision.
    """
    table = read_table(
        data,
        aliases=HEADER_ALIASES,
        filename=filename,
        content_type=content_type,
        list_key="questions",
        required=REQUIRED_COLUMNS,
        max_rows=max_rows,
    )
    if table.truncated:
        return ImportResult(errors=[RowError(0, "", f"too many rows: at most {max_rows} per file", "too_many_rows",
                                             {"max": max_rows})])
    result = validate_rows(table.rows, max_cell_chars=max_cell_chars)
    if table.errors:
        result.errors = sorted([*table.errors, *result.errors], key=lambda e: e.row)
    return result


def validate_rows(
    rows: Iterable[tuple[int, Mapping[str, object]]], *, max_cell_chars: int = 10_000
) -> ImportResult:
    """Check every row: valid rows become Questions, every bad field one RowError."""
    result = ImportResult()
    seen_ids: dict[str, int] = {}
    for number, values in rows:
        checker = _RowChecker(number, values, max_cell_chars)
        question = checker.question()
        result.errors.extend(checker.errors)
        if question is None:
            continue
        first = seen_ids.setdefault(question.id, number)
        if first == number and not checker.explicit_id:
            # rows without an id: the same question typed with full-width or other-case letters is
            # a duplicate too (folded for matching only; the text is kept as written)
            first = seen_ids.setdefault("~" + _match_key(question.type, question.stem, question.options), number)
        if first != number:
            what = "duplicate id" if checker.explicit_id else "same type, stem and options as"
            code = "duplicate_id" if checker.explicit_id else "duplicate_question"
            result.errors.append(RowError(number, "id", f"{what} {question.id!r} (row {first})", code,
                                          {"value": question.id, "first": first}))
            continue
        result.questions.append(question)
    return result


class _RowChecker:
    """Reads one row's fields; each accessor records its own error and returns None when bad."""

    def __init__(self, row: int, values: Mapping[str, object], max_cell_chars: int) -> None:
        self.row = row
        self.values = values
        self.max_cell_chars = max_cell_chars
        self.errors: list[RowError] = []
        self.explicit_id = False

    def fail(self, column: str, message: str, code: str = "invalid", **params: object) -> None:
        self.errors.append(RowError(self.row, column, message, code, params))

    def question(self) -> Question | None:
        qid = self.text("id")
        qtype = self.qtype()
        stem = self.text("stem")
        if stem == "":
            self.fail("stem", "stem is empty", "stem_empty")
        options = self.options(qtype) if qtype else None
        answer = self.answer(qtype, options) if qtype and options else None
        category = self.text("category")
        difficulty = self.difficulty()
        points = self.points()
        explanation = self.text("explanation")
        if qid:
            self.explicit_id = True
            if not _ID_RE.fullmatch(qid):
                self.fail("id", "id must be 1-64 letters, digits, '_', '-', '.' or ':'", "bad_id")
        if self.errors or not (qtype and stem and options and answer) or points is None:
            return None
        return Question(
            id=qid or make_question_id(qtype, stem, options),
            type=qtype,
            stem=stem,
            options=options,
            answer=answer,
            category=category or None,
            difficulty=difficulty,
            points=points,
            explanation=explanation or "",
        )

    def text(self, column: str, value: object = None) -> str | None:
        """Stripped text ('' when missing) or None after recording an error."""
        if value is None:
            value = self.values.get(column)
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(column, f"expected text, got {type(value).__name__}", "not_text")
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        # NFC only: full-width punctuation and blanks ("（　）") are kept as written
        text = unicodedata.normalize("NFC", str(value)).strip()
        if len(text) > self.max_cell_chars:
            self.fail(column, f"longer than {self.max_cell_chars} characters ({len(text)})", "too_long",
                      max=self.max_cell_chars, length=len(text))
            return None
        return text

    def qtype(self) -> str | None:
        raw = self.text("type")
        if raw is None:
            return None
        qtype = _TYPES.get(normalize_header(raw)) if raw else None
        if qtype is None:
            if raw:
                self.fail("type", f"unknown type {raw!r}: use single, multiple or judge", "unknown_type", value=raw)
            else:
                self.fail("type", "type is empty", "type_empty")
        return qtype

    def options(self, qtype: str) -> tuple[str, ...] | None:
        texts = self._option_texts()
        if texts is None:
            return None
        last = max((i for i, t in enumerate(texts) if t), default=-1)
        gaps = [i for i in range(last) if not texts[i]]
        for i in gaps:
            self.fail(OPTION_COLUMNS[i], f"option {OPTION_KEYS[i]} is empty but a later option is given", "option_gap")
        if gaps:
            return None
        options = tuple(texts[: last + 1])
        if qtype == "judge":
            if not options:
                return JUDGE_OPTIONS
            if len(options) != 2:
                self.fail(OPTION_COLUMNS[min(len(options), 2)], "judge questions have exactly two options",
                          "judge_two_options")
                return None
        elif len(options) < 2:
            self.fail(OPTION_COLUMNS[len(options)], f"{qtype} questions need 2 to 8 options", "too_few_options")
            return None
        return options

    def _option_texts(self) -> list[str] | None:
        listed = self.values.get("options")
        if listed is None:
            texts = [self.text(column) for column in OPTION_COLUMNS]
            return None if None in texts else [t or "" for t in texts]
        if any(self.values.get(c) not in (None, "") for c in OPTION_COLUMNS):
            self.fail("options", "give either options or option_a..option_h, not both", "options_twice")
            return None
        if not isinstance(listed, list):
            self.fail("options", "options must be a list of texts", "options_not_list")
            return None
        if len(listed) > len(OPTION_KEYS):
            self.fail("options", f"at most {len(OPTION_KEYS)} options, got {len(listed)}", "too_many_options",
                      max=len(OPTION_KEYS), count=len(listed))
            return None
        texts = [self.text(OPTION_COLUMNS[i], v if v is not None else "") for i, v in enumerate(listed)]
        return None if None in texts else [t or "" for t in texts]

    def answer(self, qtype: str, options: tuple[str, ...]) -> str | None:
        raw = self.values.get("answer")
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            raw = ",".join(raw)  # JSON may list the keys: ["A", "C"]
        text = self.text("answer", raw)
        if text is None:
            return None
        text = unicodedata.normalize("NFKC", text)
        if not text:
            self.fail("answer", "answer is empty", "answer_empty")
            return None
        if qtype == "judge" and text.lower() in _TRUE | _FALSE:
            return "A" if text.lower() in _TRUE else "B"
        letters = sorted(set(_ANSWER_SEPARATORS.sub("", text).upper()))
        valid = OPTION_KEYS[: len(options)]
        if not letters or any(c not in valid for c in letters):
            hint = "true/false (对/错) or A/B" if qtype == "judge" else f"option keys from A to {valid[-1]}"
            self.fail("answer", f"answer {text!r} is not valid: use {hint}", "answer_not_an_option", value=text,
                      hint_kind="judge" if qtype == "judge" else "options", last=valid[-1])
            return None
        if qtype != "multiple" and len(letters) != 1:
            self.fail("answer", f"{qtype} questions have exactly one correct option, got {text!r}",
                      "one_answer_only", value=text)
            return None
        return "".join(letters)

    def difficulty(self) -> int | None:
        raw = self.values.get("difficulty")
        if isinstance(raw, str) and raw.strip().lower() in _DIFFICULTY_WORDS:
            return _DIFFICULTY_WORDS[raw.strip().lower()]
        value = self.integer("difficulty")
        if value is not None and not 1 <= value <= 5:
            self.fail("difficulty", f"difficulty must be 1-5 or easy/medium/hard, got {value}", "difficulty_range",
                      value=value)
            return None
        return value

    def points(self) -> int | None:
        if _is_missing(self.values.get("points")):
            return DEFAULT_POINTS
        value = self.integer("points")
        if value is None:
            return None
        if not 1 <= value <= MAX_POINTS:
            self.fail("points", f"points must be a whole number from 1 to {MAX_POINTS}, got {value}", "points_range",
                      max=MAX_POINTS, value=value)
            return None
        return value

    def integer(self, column: str) -> int | None:
        """Whole number, None when missing or bad (an error is recorded for bad)."""
        raw = self.values.get(column)
        if _is_missing(raw):
            return None
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str):
            try:
                number = float(raw.strip())
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        self.fail(column, f"{column} must be a whole number, got {raw!r}", "not_a_whole_number", value=str(raw))
        return None


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
