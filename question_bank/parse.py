"""Decoding of uploaded tables (JSON, CSV, XLSX) into numbered rows keyed by canonical column names.

Shared by the question import and the org import: this module knows about file formats and
header aliases, nothing about what the columns mean.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Collection, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

import orjson

from .errors import ImportFormatError, RowError

__all__ = [
    "XLSX_CONTENT_TYPE",
    "Table",
    "detect_format",
    "normalize_header",
    "read_table",
]

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_EXTENSIONS = {".json": "json", ".csv": "csv", ".xlsx": "xlsx"}
_CONTENT_TYPES = {
    "application/json": "json",
    "text/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    XLSX_CONTENT_TYPE: "xlsx",
}
# A real workbook has a few dozen parts; these bounds only stop archives built to explode.
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_XLSX_ENTRIES = 10_000

Row = tuple[int, dict[str, object]]


@dataclass(slots=True)
class Table:
    """Rows as (row number as the user sees it, {canonical column: raw value})."""

    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # True when the file had more than max_rows data rows; rows then holds only the first ones.
    truncated: bool = False


def normalize_header(name: str) -> str:
    """Header spelling folded so 'Option A', 'option_a' and full-width letters compare equal."""
    return re.sub(r"[\s_\-]+", "", unicodedata.normalize("NFKC", name)).lower()


def detect_format(data: bytes, filename: str | None = None, content_type: str | None = None) -> str:
    """'json', 'csv' or 'xlsx': by extension, else content type, else by looking at the bytes."""
    if filename:
        suffix = PurePath(filename).suffix.lower()
        if suffix == ".xls":
            raise ImportFormatError("old Excel .xls files are not supported; save the file as .xlsx", "xls_file")
        if suffix in _EXTENSIONS:
            return _EXTENSIONS[suffix]
    if content_type:
        kind = _CONTENT_TYPES.get(content_type.split(";", 1)[0].strip().lower())
        if kind:
            return kind
    return _sniff(data)


def _sniff(data: bytes) -> str:
    if data.startswith(b"PK"):
        return "xlsx"
    head = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if head[:1] in (b"[", b"{"):
        return "json"
    first_line = head.split(b"\n", 1)[0]
    if b"," in first_line and b"\x00" not in head:
        return "csv"
    raise ImportFormatError("unknown file format: upload a .json, .csv or .xlsx file", "unknown_format")


def read_table(
    data: bytes,
    *,
    aliases: Mapping[str, str],
    filename: str | None = None,
    content_type: str | None = None,
    list_key: str | None = None,
    required: Collection[str] = (),
    max_rows: int = 100_000,
) -> Table:
    """Decode ``data`` and rename columns through ``aliases`` (normalized header -> canonical name).

    Columns not in ``aliases`` are dropped. For CSV/XLSX a header without one of ``required``
    is an ImportFormatError; JSON objects are checked row by row by the caller instead.
    """
    kind = detect_format(data, filename, content_type)
    if kind == "json":
        return _json_table(data, aliases, list_key, max_rows)
    raw_rows = _csv_rows(data) if kind == "csv" else _xlsx_rows(data)
    return _grid_table(raw_rows, aliases, required, max_rows)


def _json_table(data: bytes, aliases: Mapping[str, str], list_key: str | None, max_rows: int) -> Table:
    try:
        doc = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as e:
        raise ImportFormatError(f"invalid JSON (UTF-8 expected): {e}") from None
    if isinstance(doc, dict) and list_key and isinstance(doc.get(list_key), list):
        doc = doc[list_key]
    if not isinstance(doc, list):
        expected = f' or {{"{list_key}": [...]}}' if list_key else ""
        raise ImportFormatError(f"JSON must be an array of objects{expected}")
    table = Table(truncated=len(doc) > max_rows)
    for number, item in enumerate(doc[:max_rows], start=1):
        if not isinstance(item, dict):
            table.errors.append(RowError(number, "", "expected a JSON object", "not_an_object"))
            continue
        values: dict[str, object] = {}
        for key, value in item.items():
            column = aliases.get(normalize_header(str(key)))
            if column is None:
                continue
            if column in values:
                table.errors.append(RowError(number, column, f"column {column!r} given twice", "column_twice"))
            values[column] = value
        table.rows.append((number, values))
    return table


def _grid_table(
    rows: Generator[tuple[int, list[object]]],
    aliases: Mapping[str, str],
    required: Collection[str],
    max_rows: int,
) -> Table:
    try:
        return _fill_grid_table(rows, aliases, required, max_rows)
    finally:
        rows.close()  # releases the workbook even when we stop early


def _fill_grid_table(
    rows: Generator[tuple[int, list[object]]],
    aliases: Mapping[str, str],
    required: Collection[str],
    max_rows: int,
) -> Table:
    header = next(rows, None)
    if header is None:
        raise ImportFormatError("the file is empty", "file_empty")
    columns = _header_columns(header[1], aliases, required)
    table = Table()
    for number, cells in rows:
        if _row_is_blank(cells):
            continue  # blank lines (trailing ones especially) are formatting, not data
        if len(table.rows) == max_rows:
            table.truncated = True
            break
        values = {name: cells[i] if i < len(cells) else None for i, name in columns.items()}
        table.rows.append((number, values))
    return table


def _header_columns(
    header: list[object], aliases: Mapping[str, str], required: Collection[str]
) -> dict[int, str]:
    columns: dict[int, str] = {}
    for index, cell in enumerate(header):
        if _is_blank(cell):
            continue
        name = aliases.get(normalize_header(str(cell)))
        if name is None:
            continue
        if name in columns.values():
            raise ImportFormatError(f"column {name!r} appears twice in the header row")
        columns[index] = name
    missing = [c for c in required if c not in columns.values()]
    if missing:
        raise ImportFormatError(f"header row is missing required column(s): {', '.join(missing)}",
                                "missing_columns", columns=list(missing))
    return columns


def _row_is_blank(cells: list[object]) -> bool:
    try:
        return not "".join(cells).strip()  # type: ignore[arg-type]  # all-text rows (CSV): fast path
    except TypeError:
        return all(_is_blank(c) for c in cells)


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _csv_rows(data: bytes) -> Generator[tuple[int, list[object]]]:
    text = _decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        # line_num counts physical lines, which is what a spreadsheet shows for one-line rows.
        for index, cells in enumerate(reader, start=1):
            yield index, list(cells)
    except csv.Error as e:
        raise ImportFormatError(f"malformed CSV near line {reader.line_num}: {e}") from None


def _decode_csv(data: bytes) -> str:
    # UTF-8 first (with or without BOM); Chinese Excel saves "CSV" as GB18030/GBK.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFormatError("CSV must be encoded as UTF-8 or GB18030", "bad_encoding")


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        raise ImportFormatError("not a valid .xlsx file (bad zip archive)") from None
    if len(infos) > MAX_XLSX_ENTRIES:
        raise ImportFormatError(f"xlsx archive has too many entries ({len(infos)})")
    # zipfile stops inflating at the declared size, so the declared sizes are a safe bound.
    total = sum(info.file_size for info in infos)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise ImportFormatError(f"xlsx file expands to {total} bytes, over the {MAX_XLSX_UNCOMPRESSED} limit")


def _xlsx_rows(data: bytes) -> Generator[tuple[int, list[object]]]:
    _check_zip(data)
    import openpyxl  # imported lazily: it is slow to import and only needed here

    try:
        with warnings.catch_warnings():
            # Style/extension warnings from other producers say nothing about the data.
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many unrelated types for corrupt files
        raise ImportFormatError(f"cannot read the .xlsx file: {e}") from None
    try:
        if not workbook.worksheets:
            raise ImportFormatError("the workbook has no sheets")
        sheet = workbook.worksheets[0]
        # The stored dimension can be wrong (or huge); read what is really there.
        sheet.reset_dimensions()
        for index, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield index, [_xlsx_value(v) for v in values]
    finally:
        workbook.close()


def _xlsx_value(value: object) -> object:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"  # as Excel displays it; keeps bools out of numbers
    if isinstance(value, float) and value.is_integer():
        return int(value)  # Excel stores every number as a double: 10 comes back as 10.0
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value
