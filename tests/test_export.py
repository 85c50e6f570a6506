"""CSV and XLSX exports streamed from both real databases."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from contest.export import HEADERS, export_rows, iter_csv, iter_xlsx, safe_text
from contest.storage import Storage
from tests.test_storage import T0, attempt_events, seed_export_data, user_ev

__all__ = ["read_all"]


async def read_all(iterator) -> bytes:
    return b"".join([chunk async for chunk in iterator])


def test_safe_text() -> None:
    assert safe_text("=1+2") == "'=1+2"
    assert safe_text("-3") == "'-3" and safe_text("+x") == "'+x" and safe_text("@SUM") == "'@SUM"
    assert safe_text("\tx") == "'\tx" and safe_text("张三") == "张三" and safe_text("") == ""


async def test_csv_has_bom_header_rows_and_no_formulas(storage: Storage) -> None:
    await seed_export_data(storage)
    data = await read_all(iter_csv(storage, "results", "c1", "/p1/"))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data[3:].decode())))
    assert rows[0] == HEADERS["results"]
    assert rows[0][:10] == [
        "attempt_id",
        "user_id",
        "name",
        "org_id",
        "score",
        "correct_count",
        "question_count",
        "duration_ms",
        "started_at",
        "finished_at",
    ]
    assert rows[1] == [
        "a1",
        "u1",
        "'=HYPERLINK(1)",
        "x1",
        "10",
        "2",
        "2",
        "5000",
        str(T0),
        str(T0 + 5000),
        "0",
        "1",
    ]
    assert rows[2][2] == "李四" and len(rows) == 3
    answers = list(
        csv.reader(io.StringIO((await read_all(export_rows(storage, "answers", "c1", None)))[3:].decode()))
    )
    assert answers[0] == HEADERS["answers"] and len(answers) == 7


async def test_csv_streams_in_chunks(storage: Storage) -> None:
    events = [user_ev(f"u{n}", name="-" + "名" * 40) for n in range(1000)]
    for n in range(1000):
        events += attempt_events(f"a{n:04d}", f"u{n}")
    await storage.write_events(events)
    chunks = [chunk async for chunk in iter_csv(storage, "results", "c1", None)]
    assert len(chunks) >= 3 and all(len(c) < 80 * 1024 for c in chunks)
    rows = list(csv.reader(io.StringIO(b"".join(chunks)[3:].decode())))
    assert len(rows) == 1001 and all(r[2].startswith("'-") for r in rows[1:])


async def test_xlsx_is_readable_with_the_right_rows(storage: Storage) -> None:
    await seed_export_data(storage)
    await storage.write_events(
        [
            {
                "t": "fin",
                "cid": "c1",
                "aid": "a4",
                "uid": "u1",
                "score": "-5",
                "cc": "0",
                "qc": "2",
                "dur": "100",
                "at": str(T0 + 99),
                "auto": "1",
                "counted": "0",
            }
        ]
    )
    data = await read_all(export_rows(storage, "results", "c1", "/p1/", "xlsx"))
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    book.close()
    assert list(rows[0]) == HEADERS["results"]
    assert rows[1] == ("a1", "u1", "=HYPERLINK(1)", "x1", 10, 2, 2, 5000, T0, T0 + 5000, 0, 1)
    assert rows[2][0] == "a4" and rows[2][4] == -5  # a negative score stays a number
    assert len(rows) == 4
    answers = await read_all(iter_xlsx(storage, "answers", "c1", None))
    book = openpyxl.load_workbook(io.BytesIO(answers), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    book.close()
    assert list(rows[0]) == HEADERS["answers"] and len(rows) == 7


async def test_xlsx_formula_is_stored_as_text(sqlite_storage: Storage) -> None:
    await seed_export_data(sqlite_storage)
    data = await read_all(iter_xlsx(sqlite_storage, "results", "c1", "/p1/c1/"))
    book = openpyxl.load_workbook(io.BytesIO(data))  # full mode: cell data types are visible
    cell = book.active["C2"]
    assert cell.value == "=HYPERLINK(1)" and cell.data_type == "s"
    book.close()


def test_unknown_export_is_refused(sqlite_storage: Storage) -> None:
    with pytest.raises(ValueError):
        export_rows(sqlite_storage, "users", "c1", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        export_rows(sqlite_storage, "results", "c1", None, "pdf")  # type: ignore[arg-type]
