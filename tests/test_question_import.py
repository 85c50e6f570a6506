"""Question import: formats, encodings, spellings and one test per kind of row error."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import openpyxl
import pytest
import xlsxwriter

from question_bank import (
    JUDGE_OPTIONS,
    ImportFormatError,
    ImportResult,
    Question,
    RowError,
    detect_format,
    make_question_id,
    parse_questions,
)
from question_bank import parse as parse_module

HEADER = [
    "id",
    "type",
    "stem",
    "option_a",
    "option_b",
    "option_c",
    "option_d",
    "answer",
    "category",
    "difficulty",
]
HEADER += ["points", "explanation"]


def make_csv(rows: list[list[object]], header: list[str] = HEADER, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def make_xlsx(rows: list[list[object]], header: list[str] = HEADER) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def make_big_xlsx(rows: list[list[object]]) -> bytes:
    # xlsxwriter is several times faster than openpyxl at writing, and lays the file out as
    # Excel does (dimension first, shared strings), which is what real uploads look like.
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = workbook.add_worksheet()
    for index, values in enumerate([HEADER, *rows]):
        sheet.write_row(index, 0, values)
    workbook.close()
    return out.getvalue()


def row(**fields: object) -> list[object]:
    base: dict[str, object] = {
        "id": "",
        "type": "single",
        "stem": "1 + 1 = ?",
        "option_a": "1",
        "option_b": "2",
        "option_c": "3",
        "option_d": "",
        "answer": "B",
        "category": "",
        "difficulty": "",
        "points": "",
        "explanation": "",
    }
    base.update(fields)
    return [base[h] for h in HEADER]


def errors_of(result: ImportResult) -> list[tuple[int, str]]:
    return [(e.row, e.column) for e in result.errors]


def only_error(result: ImportResult) -> RowError:
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


# --- happy paths -----------------------------------------------------------------------------


def test_csv_full_row() -> None:
    data = make_csv(
        [
            row(
                id="Q1",
                category="史",
                difficulty="2",
                points="5",
                explanation="because",
                option_d="4",
                answer="b",
            )
        ]
    )
    result = parse_questions(data, filename="bank.csv")
    assert result.errors == []
    assert result.questions == [
        Question("Q1", "single", "1 + 1 = ?", ("1", "2", "3", "4"), "B", "史", 2, 5, "because")
    ]


def test_defaults_and_generated_id_is_stable() -> None:
    data = make_csv([row()])
    first = parse_questions(data, filename="a.csv").questions[0]
    again = parse_questions(data, filename="b.csv").questions[0]
    assert (
        first.points == 10 and first.category is None and first.difficulty is None and first.explanation == ""
    )
    assert first.id == again.id == make_question_id("single", "1 + 1 = ?", ("1", "2", "3"))
    assert first.id.startswith("q") and len(first.id) == 13


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("AC", "AC"),
        ("A,C", "AC"),
        ("A、C", "AC"),
        ("a c", "AC"),
        ("ca", "AC"),
        ("A，C", "AC"),
        ("A;C", "AC"),
        ("C", "C"),
    ],
)
def test_multiple_answer_spellings(spelling: str, expected: str) -> None:
    result = parse_questions(make_csv([row(type="multiple", answer=spelling)]), filename="x.csv")
    assert result.errors == []
    assert result.questions[0].answer == expected


@pytest.mark.parametrize("spelling", ["B", "b", " B ", "Ｂ"])
def test_single_answer_spellings(spelling: str) -> None:
    assert parse_questions(make_csv([row(answer=spelling)]), filename="x.csv").questions[0].answer == "B"


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        *[(s, "A") for s in ["对", "正确", "true", "TRUE", "T", "√", "yes", "A"]],
        *[(s, "B") for s in ["错", "错误", "false", "False", "F", "×", "no", "b"]],
    ],
)
def test_judge_answer_spellings(spelling: str, expected: str) -> None:
    data = make_csv([row(type="judge", option_a="", option_b="", option_c="", answer=spelling)])
    result = parse_questions(data, filename="x.csv")
    assert result.errors == []
    question = result.questions[0]
    assert (question.answer, question.options) == (expected, JUDGE_OPTIONS)


def test_judge_with_own_options() -> None:
    data = make_csv([row(type="judge", option_a="Yes", option_b="No", option_c="", answer="B")])
    question = parse_questions(data, filename="x.csv").questions[0]
    assert (question.options, question.answer) == (("Yes", "No"), "B")


def test_chinese_headers_types_and_difficulties_in_gb18030() -> None:
    header = ["编号", "题型", "题干", "选项A", "选项B", "选项C", "答案", "分类", "难度", "分值", "解析"]
    rows = [
        ["c1", "单选题", "中国的首都?", "上海", "北京", "广州", "B", "常识", "易", "5", "北京是首都"],
        ["c2", "多选", "哪些是直辖市?", "北京", "上海", "苏州", "A、B", "常识", "中", "", ""],
        ["c3", "判断题", "地球是圆的", "", "", "", "对", "", "难", "", ""],
        ["c4", "单选", "x", "a", "b", "", "A", "", "easy", "", ""],
        ["c5", "多选题", "y", "a", "b", "", "AB", "", "medium", "", ""],
        ["c6", "判断", "z", "", "", "", "错误", "", "hard", "", ""],
    ]
    result = parse_questions(make_csv(rows, header, encoding="gb18030"), filename="题库.csv")
    assert result.errors == []
    got = [(q.id, q.type, q.answer, q.difficulty) for q in result.questions]
    assert got == [
        ("c1", "single", "B", 1),
        ("c2", "multiple", "AB", 3),
        ("c3", "judge", "A", 5),
        ("c4", "single", "A", 1),
        ("c5", "multiple", "AB", 3),
        ("c6", "judge", "B", 5),
    ]
    assert result.questions[0].stem == "中国的首都?" and result.questions[0].explanation == "北京是首都"


def test_csv_with_utf8_bom() -> None:
    data = b"\xef\xbb\xbf" + make_csv([row(stem="带BOM的题目")])
    result = parse_questions(data, filename="bom.csv")
    assert result.errors == [] and result.questions[0].stem == "带BOM的题目"


def test_header_spellings_and_unknown_columns_ignored() -> None:
    header = ["Type", "Stem", "Option A", "OPTION_B", "Answer", "Notes"]
    result = parse_questions(make_csv([["single", "s", "a", "b", "a", "ignored"]], header), filename="x.csv")
    assert result.errors == [] and result.questions[0].options == ("a", "b")


def test_xlsx_numbers_blank_rows_and_row_numbers() -> None:
    rows = [
        [1001, "single", "数字选项", 1990, 2000.0, None, None, "B", "史", 3.0, 10.0, None],
        [None] * len(HEADER),  # a blank row keeps Excel's numbering
        [None, "single", "", "a", "b", None, None, "A", None, None, None, None],
        [None] * len(HEADER),
        [None] * len(HEADER),
    ]
    result = parse_questions(make_xlsx(rows), filename="bank.xlsx")
    assert errors_of(result) == [(4, "stem")]
    question = result.questions[0]
    assert (question.id, question.options, question.difficulty, question.points) == (
        "1001",
        ("1990", "2000"),
        3,
        10,
    )
    assert isinstance(question.points, int) and isinstance(question.difficulty, int)


def test_xlsx_by_content_type_and_sniffing() -> None:
    data = make_xlsx([row()])
    assert detect_format(data, None, parse_module.XLSX_CONTENT_TYPE) == "xlsx"
    assert detect_format(data) == "xlsx"
    assert len(parse_questions(data).questions) == 1


def test_xlsx_ten_thousand_rows() -> None:
    rows = [
        row(id=f"Q{i:05d}", stem=f"question {i}", difficulty=i % 5 + 1, points=i % 20 + 1)
        for i in range(10_000)
    ]
    result = parse_questions(make_big_xlsx(rows), filename="big.xlsx")
    assert result.errors == []
    assert len(result.questions) == 10_000
    assert result.questions[-1].id == "Q09999" and result.questions[-1].points == 9999 % 20 + 1


def test_json_array_and_wrapped() -> None:
    items = [
        {
            "id": "j1",
            "type": "multiple",
            "stem": "s",
            "options": ["a", "b", "c"],
            "answer": ["A", "C"],
            "points": 3,
        },
        {"type": "judge", "stem": "t", "answer": "true", "difficulty": 2},
        {"type": "single", "stem": "u", "option_a": "x", "option_b": "y", "answer": "b", "category": "c"},
    ]
    for payload in (items, {"questions": items}):
        result = parse_questions(json.dumps(payload, ensure_ascii=False).encode(), filename="q.json")
        assert result.errors == []
        assert [(q.id, q.answer) for q in result.questions][0] == ("j1", "AC")
        assert result.questions[1].options == JUDGE_OPTIONS and result.questions[1].answer == "A"
        assert result.questions[2].category == "c"


def test_json_by_content_type_and_sniffing() -> None:
    data = b'  [{"type": "single", "stem": "s", "options": ["a", "b"], "answer": "A"}]'
    assert len(parse_questions(data, content_type="application/json; charset=utf-8").questions) == 1
    assert len(parse_questions(data).questions) == 1


def test_csv_by_content_type() -> None:
    assert len(parse_questions(make_csv([row()]), content_type="text/csv").questions) == 1


def test_to_dict() -> None:
    assert RowError(2, "stem", "stem is empty", "stem_empty").to_dict() == {
        "row": 2,
        "column": "stem",
        "message": "stem is empty",
        "code": "stem_empty",
        "params": {},
    }
    result = parse_questions(make_csv([row(id="a"), row(stem="")]), filename="x.csv")
    as_dict = result.to_dict()
    assert as_dict["errors"] == [{"row": 3, "column": "stem", "message": "stem is empty", "code": "stem_empty",
                                  "params": {}}]
    assert as_dict["questions"][0]["answer"] == "B"  # type: ignore[index]


# --- file-level failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename"),
    [(b"\x00\x01binary", None), (b"hello world", "notes.txt"), (b"whatever", "old.xls"), (b"", None)],
)
def test_unknown_format(data: bytes, filename: str | None) -> None:
    with pytest.raises(ImportFormatError):
        parse_questions(data, filename=filename)


def test_invalid_json_and_wrong_shape() -> None:
    with pytest.raises(ImportFormatError, match="JSON"):
        parse_questions(b"[{", filename="x.json")
    with pytest.raises(ImportFormatError, match="array"):
        parse_questions(b'{"rows": []}', filename="x.json")


def test_missing_required_header_column() -> None:
    with pytest.raises(ImportFormatError, match="stem"):
        parse_questions(make_csv([["single", "B"]], ["type", "answer"]), filename="x.csv")


def test_duplicate_header_column() -> None:
    with pytest.raises(ImportFormatError, match="twice"):
        parse_questions(
            make_csv([["single", "s", "s", "B"]], ["type", "stem", "题干", "answer"]), filename="x.csv"
        )


def test_undecodable_csv() -> None:
    with pytest.raises(ImportFormatError, match="UTF-8"):
        parse_questions(b"type,stem,answer\n\x81\x20,x,A\n", filename="x.csv")


def test_corrupt_xlsx() -> None:
    with pytest.raises(ImportFormatError):
        parse_questions(b"PK\x03\x04 definitely not a zip", filename="x.xlsx")


def test_zip_bomb_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_module, "MAX_XLSX_UNCOMPRESSED", 1 << 20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (2 << 20))
    assert len(buf.getvalue()) < 10_000  # it really is a bomb: tiny file, large expansion
    with pytest.raises(ImportFormatError, match="expands"):
        parse_questions(buf.getvalue(), filename="bomb.xlsx")


def test_zip_with_too_many_entries_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_module, "MAX_XLSX_ENTRIES", 50)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i in range(51):
            archive.writestr(f"part{i}.xml", b"x")
    with pytest.raises(ImportFormatError, match="entries"):
        parse_questions(buf.getvalue(), filename="many.xlsx")


# --- one test per row error ------------------------------------------------------------------


def test_error_unknown_type() -> None:
    error = only_error(parse_questions(make_csv([row(), row(type="essay")]), filename="x.csv"))
    assert (error.row, error.column) == (3, "type") and "essay" in error.message


def test_error_empty_stem() -> None:
    assert errors_of(parse_questions(make_csv([row(stem="  ")]), filename="x.csv")) == [(2, "stem")]


def test_error_too_few_options() -> None:
    data = make_csv([row(option_b="", option_c="", answer="A")])
    assert errors_of(parse_questions(data, filename="x.csv")) == [(2, "option_b")]


def test_error_option_gap() -> None:
    data = make_csv([row(option_b="", option_c="3", answer="A")])
    assert errors_of(parse_questions(data, filename="x.csv")) == [(2, "option_b")]


def test_error_judge_with_three_options() -> None:
    data = make_csv([row(type="judge", answer="A")])
    assert errors_of(parse_questions(data, filename="x.csv")) == [(2, "option_c")]


def test_error_answer_references_missing_option() -> None:
    assert errors_of(parse_questions(make_csv([row(answer="D")]), filename="x.csv")) == [(2, "answer")]


def test_error_answer_not_letters() -> None:
    assert errors_of(parse_questions(make_csv([row(answer="B?")]), filename="x.csv")) == [(2, "answer")]


def test_error_single_with_two_answers() -> None:
    error = only_error(parse_questions(make_csv([row(answer="AB")]), filename="x.csv"))
    assert (error.row, error.column) == (2, "answer") and "exactly one" in error.message


def test_error_empty_answer() -> None:
    data = make_csv([row(type="multiple", answer="")])
    assert errors_of(parse_questions(data, filename="x.csv")) == [(2, "answer")]


def test_error_judge_answer_not_true_false() -> None:
    data = make_csv([row(type="judge", option_a="", option_b="", option_c="", answer="maybe")])
    assert errors_of(parse_questions(data, filename="x.csv")) == [(2, "answer")]


@pytest.mark.parametrize("value", ["0", "6", "-1", "2.5", "very hard"])
def test_error_bad_difficulty(value: str) -> None:
    assert errors_of(parse_questions(make_csv([row(difficulty=value)]), filename="x.csv")) == [
        (2, "difficulty")
    ]


@pytest.mark.parametrize("value", ["0", "-5", "1001", "2.5", "ten"])
def test_error_bad_points(value: str) -> None:
    assert errors_of(parse_questions(make_csv([row(points=value)]), filename="x.csv")) == [(2, "points")]


def test_error_bool_is_not_a_number_in_json() -> None:
    items = [
        {
            "type": "single",
            "stem": "s",
            "options": ["a", "b"],
            "answer": "A",
            "points": True,
            "difficulty": False,
        }
    ]
    result = parse_questions(json.dumps(items).encode(), filename="x.json")
    assert errors_of(result) == [(1, "difficulty"), (1, "points")]


def test_error_wrong_json_types() -> None:
    items = [
        {"type": "single", "stem": ["not", "text"], "options": ["a", "b"], "answer": "A"},
        {"type": "single", "stem": "s", "options": "a,b", "answer": "A"},
        {"type": "single", "stem": "s", "options": [str(i) for i in range(9)], "answer": "A"},
        {"type": "single", "stem": "s", "options": ["a", "b"], "option_a": "a", "answer": "A"},
        "not an object",
    ]
    result = parse_questions(json.dumps(items).encode(), filename="x.json")
    assert errors_of(result) == [(1, "stem"), (2, "options"), (3, "options"), (4, "options"), (5, "")]


def test_error_duplicate_id() -> None:
    result = parse_questions(
        make_csv([row(id="Q1"), row(id="Q2"), row(id="Q1", stem="other")]), filename="x.csv"
    )
    error = only_error(result)
    assert (error.row, error.column) == (4, "id") and "row 2" in error.message
    assert [q.id for q in result.questions] == ["Q1", "Q2"]


def test_error_duplicate_generated_id() -> None:
    error = only_error(parse_questions(make_csv([row(), row()]), filename="x.csv"))
    assert (error.row, error.column) == (3, "id")


def test_error_invalid_id() -> None:
    assert errors_of(parse_questions(make_csv([row(id="has space")]), filename="x.csv")) == [(2, "id")]


def test_error_cell_too_long() -> None:
    result = parse_questions(make_csv([row(stem="x" * 101)]), filename="x.csv", max_cell_chars=100)
    assert errors_of(result) == [(2, "stem")]


def test_error_too_many_rows() -> None:
    result = parse_questions(make_csv([row(id=f"q{i}") for i in range(6)]), filename="x.csv", max_rows=5)
    assert result.questions == [] and errors_of(result) == [(0, "")]
    items = [{"type": "judge", "stem": f"s{i}", "answer": "对"} for i in range(6)]
    result = parse_questions(json.dumps(items).encode(), filename="x.json", max_rows=5)
    assert errors_of(result) == [(0, "")]


def test_every_bad_field_is_reported() -> None:
    data = make_csv([row(), row(type="bogus", stem="", difficulty="9", points="0"), row(answer="Z")])
    result = parse_questions(data, filename="x.csv")
    assert errors_of(result) == [(3, "type"), (3, "stem"), (3, "difficulty"), (3, "points"), (4, "answer")]
    assert len(result.questions) == 1  # the caller decides on all-or-nothing
