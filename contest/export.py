"""Streamed exports of durable storage as CSV or XLSX bytes.

Rows come from ``Storage.iter_results`` / ``iter_answers`` as they are read, so a 20M-row export
never sits in memory. Cells that a spreadsheet would run as a formula (text starting with
``= + - @``, tab or CR) are neutralised; numbers stay numbers, negative ones included.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import os
import tempfile
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import xlsxwriter

from contest.storage.base import ResultRows, RowStream

__all__ = ["CONTENT_TYPES", "HEADERS", "export_rows", "iter_csv", "iter_xlsx", "safe_text"]

log = logging.getLogger(__name__)

What = Literal["results", "answers"]
# a request's or a command line's word, checked and narrowed to What
_KINDS: dict[str, What] = {"results": "results", "answers": "answers"}

# The contract columns of API.md first, in their order; extra columns only ever appended.
HEADERS: dict[str, list[str]] = {
    "results": [
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
        "voided",
        "flagged_answers",
    ],
    "answers": [
        "attempt_id",
        "user_id",
        "index",
        "question_id",
        "choice",
        "correct",
        "points_awarded",
        "answered_at",
        "flagged",
    ],
}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

_CHUNK = 64 * 1024
_ROWS_PER_XLSX_CALL = 2000
_XLSX_MAX_ROWS = 1_048_576  # per sheet, header included
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """Text a spreadsheet will show as text, never evaluate."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _rows(
    storage: ResultRows, what: str, contest_id: str, org_path_prefix: str | None
) -> RowStream:
    if what == "results":
        return storage.iter_results(contest_id, org_path_prefix)
    if what == "answers":
        return storage.iter_answers(contest_id, org_path_prefix)
    raise ValueError(f"unknown export {what!r}: results or answers")


async def iter_csv(
    storage: ResultRows, what: What, contest_id: str, org_path_prefix: str | None
) -> AsyncGenerator[bytes, None]:
    """UTF-8 CSV with a BOM (Excel then reads Chinese names correctly), header first, ~64 KB chunks."""
    rows = _rows(storage, what, contest_id, org_path_prefix)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS[what])
    yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    out = bytearray()
    async for row in rows:
        writer.writerow([safe_text(v) if isinstance(v, str) else v for v in row])
        # the buffer counts characters and a Chinese one is 3 bytes: size the chunk in bytes
        if buffer.tell() >= 4096:
            out += buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            if len(out) >= _CHUNK:
                yield bytes(out)
                out.clear()
    out += buffer.getvalue().encode()
    if out:
        yield bytes(out)


class _XlsxWriter:
    """An xlsxwriter workbook in constant-memory mode; every method runs on the export thread."""

    def __init__(self, path: str, header: list[str]) -> None:
        self.header = header
        self.book = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": os.path.dirname(path)})
        self.sheet: Any = None
        self.row = 0
        self.sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self.sheets += 1
        self.sheet = self.book.add_worksheet(f"Sheet{self.sheets}")
        for col, name in enumerate(self.header):
            self.sheet.write_string(0, col, name)
        self.row = 1

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        for values in rows:
            if self.row >= _XLSX_MAX_ROWS:
                self._new_sheet()
            sheet, r = self.sheet, self.row
            for col, value in enumerate(values):
                if value is None:
                    continue
                if isinstance(value, int | float):
                    sheet.write_number(r, col, value)
                else:
                    # write_string never interprets a leading "=": the cell is text, not a formula
                    sheet.write_string(r, col, str(value))
            self.row += 1

    def close(self) -> None:
        self.book.close()


async def iter_xlsx(
    storage: ResultRows, what: What, contest_id: str, org_path_prefix: str | None
) -> AsyncGenerator[bytes, None]:
    """An .xlsx built in a temp file on a worker thread, then streamed out in chunks."""
    rows = _rows(storage, what, contest_id, org_path_prefix)
    loop = asyncio.get_running_loop()
    fd, path = tempfile.mkstemp(prefix="quiz-export-", suffix=".xlsx")
    os.close(fd)
    # one thread: xlsxwriter's constant_memory mode needs rows written in order
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-export")

    def call(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return loop.run_in_executor(executor, fn, *args)

    try:
        book: _XlsxWriter = await call(_XlsxWriter, path, HEADERS[what])
        chunk: list[tuple[Any, ...]] = []
        async for row in rows:
            chunk.append(row)
            if len(chunk) >= _ROWS_PER_XLSX_CALL:
                await call(book.write, chunk)
                chunk = []
        await call(book.write, chunk)
        await call(book.close)
        fh = await call(open, path, "rb")
        try:
            while data := await call(fh.read, _CHUNK):
                yield data
        finally:
            fh.close()
    finally:
        executor.shutdown(wait=False)
        with contextlib.suppress(OSError):
            os.unlink(path)


def export_rows(
    storage: ResultRows,
    what: str,
    contest_id: str,
    org_path_prefix: str | None,
    fmt: str = "csv",
) -> AsyncGenerator[bytes, None]:
    """The export file as byte chunks: ``what`` "results" or "answers", ``fmt`` "csv" or "xlsx"."""
    kind = _KINDS.get(what)
    if kind is None:
        raise ValueError(f"unknown export {what!r}: results or answers")
    if fmt == "csv":
        return iter_csv(storage, kind, contest_id, org_path_prefix)
    if fmt == "xlsx":
        return iter_xlsx(storage, kind, contest_id, org_path_prefix)
    raise ValueError(f"unknown format {fmt!r}: csv or xlsx")
