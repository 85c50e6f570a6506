"""Question model, import and validation (json/csv/xlsx), the in-memory bank, seeded paper drawing.

No aiohttp or Redis here: the web layer calls these functions and maps the errors below to
the API's error shape.
"""

from .bank import QuestionBank
from .errors import ImportFormatError, PaperError, QuestionBankError, RowError, SnapshotError
from .model import JUDGE_OPTIONS, OPTION_COLUMNS, OPTION_KEYS, QUESTION_TYPES, ImportResult, Question
from .paper import DrawRule, PaperItem, check_rules, draw_paper, original_keys, render_question, shown_answer
from .parse import detect_format, read_table
from .validate import make_question_id, parse_questions, validate_rows

__all__ = [
    "JUDGE_OPTIONS",
    "OPTION_COLUMNS",
    "OPTION_KEYS",
    "QUESTION_TYPES",
    "DrawRule",
    "ImportFormatError",
    "ImportResult",
    "PaperError",
    "PaperItem",
    "Question",
    "QuestionBank",
    "QuestionBankError",
    "RowError",
    "SnapshotError",
    "check_rules",
    "detect_format",
    "draw_paper",
    "make_question_id",
    "original_keys",
    "parse_questions",
    "read_table",
    "render_question",
    "shown_answer",
    "validate_rows",
]
