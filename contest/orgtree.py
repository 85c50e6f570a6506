"""The organization tree (province > city > county > town > village): import checks and lookups.

Pure data: no aiohttp, no Redis. Paths and member totals are computed once per tree, because
leaderboards ask for them on every org-scoped request.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from contest.orgsearch import OrgIndex
from question_bank.errors import RowError
from question_bank.parse import normalize_header, read_table
from question_bank.versioned import VersionedById

__all__ = [
    "LEVEL_NAMES",
    "MAX_LEVEL",
    "Org",
    "OrgTree",
    "OrgTreeError",
    "parse_orgs",
]

MAX_LEVEL = 5
MAX_NAME_CHARS = 200
_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_WHOLE_FLOAT_RE = re.compile(r"\d+\.0*")

LEVEL_NAMES: dict[str, int] = {
    **dict.fromkeys(["province", "省", "省级"], 1),
    **dict.fromkeys(["city", "市", "市级", "地市"], 2),
    **dict.fromkeys(["county", "district", "县", "区", "县级", "区县", "县区"], 3),
    **dict.fromkeys(["town", "township", "乡", "镇", "乡镇", "街道", "乡级"], 4),
    **dict.fromkeys(["village", "community", "村", "社区", "村级"], 5),
}

_HEADER_ALIASES: dict[str, str] = {
    normalize_header(spelling): column
    for column, spellings in {
        "org_id": ["org_id", "id", "机构编号", "组织编号", "机构代码", "编号", "单位编号", "单位代码"],
        "parent_id": ["parent_id", "parent", "上级编号", "上级机构编号", "上级组织编号", "父级编号", "上级单位",
                      "上级单位编号"],
        "name": ["name", "名称", "机构名称", "组织名称", "单位名称"],
        "level": ["level", "级别", "层级"],
        "members": ["members", "member_count", "人数", "成员数", "应参与人数", "党员人数"],
        "accepts_members": ["accepts_members", "接收成员", "可加入", "可注册", "直接加入"],
    }.items()
    for spelling in spellings
}


class _Fail(Protocol):
    """Records a row's error: the column, the message, a code and its parameters."""

    def __call__(self, column: str, message: str, code: str = ..., **params: object) -> None: ...


class OrgTreeError(ValueError):
    """Orgs that do not form a tree (missing parent, cycle) or a corrupt snapshot."""


@dataclass(frozen=True, slots=True)
class Org:
    org_id: str
    parent_id: str | None
    name: str
    level: int
    members: int = 0
    # participants may join a unit with children too when its row says so (a town's own office)
    accepts_members: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "org_id": self.org_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "level": self.level,
            "members": self.members,
            "accepts_members": self.accepts_members,
        }


@dataclass(slots=True)
class _Row:
    """One file row after per-field checks; None marks a missing or bad field."""

    row: int
    org_id: str | None
    parent_id: str | None
    name: str | None
    level: int | None
    members: int | None
    accepts_members: bool = False
    errors: list[RowError] = field(default_factory=list)


def parse_orgs(
    data: bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    existing: OrgTree | None = None,
    max_rows: int = 300_000,
) -> tuple[list[Org], list[RowError]]:
    """Decode and check an org file against itself and ``existing``; returns (valid orgs, errors).

    Raises question_bank.ImportFormatError when the file itself is unreadable. Importing only
    when there are no errors is the caller's decision.
    """
    table = read_table(
        data,
        aliases=_HEADER_ALIASES,
        filename=filename,
        content_type=content_type,
        list_key="orgs",
        required=("org_id", "name", "level"),
        max_rows=max_rows,
    )
    if table.truncated:
        return [], [RowError(0, "", f"too many rows: at most {max_rows} per file", "too_many_rows", {"max": max_rows})]
    rows = [_check_fields(number, values) for number, values in table.rows]
    _check_structure(rows, existing or OrgTree())
    errors = sorted([*table.errors, *(e for r in rows for e in r.errors)], key=lambda e: e.row)
    orgs = [
        Org(r.org_id, r.parent_id, r.name, r.level, r.members, r.accepts_members)
        for r in rows
        if not r.errors and r.org_id and r.name and r.level is not None and r.members is not None
    ]
    return orgs, errors


def _check_fields(number: int, values: Mapping[str, object]) -> _Row:
    row = _Row(number, None, None, None, None, None)

    def fail(column: str, message: str, code: str = "invalid", **params: object) -> None:
        row.errors.append(RowError(number, column, message, code, params))

    org_id = _text(values.get("org_id"))
    if not org_id or not _ID_RE.fullmatch(org_id):
        fail("org_id", "org_id must be 1-64 characters from A-Z, a-z, 0-9, '_', '.', '-'", "bad_org_id")
    else:
        row.org_id = org_id
    parent_id = _text(values.get("parent_id"))
    if parent_id and not _ID_RE.fullmatch(parent_id):
        fail("parent_id", "parent_id must be empty (a root) or a valid org_id", "bad_parent_id")
    row.parent_id = parent_id or None
    name = _text(values.get("name"))
    if not name or len(name) > MAX_NAME_CHARS:
        fail("name", f"name must be 1-{MAX_NAME_CHARS} characters", "bad_name", max=MAX_NAME_CHARS)
    else:
        row.name = name
    row.level = _level(values.get("level"))
    if row.level is None:
        fail("level", f"level must be 1-{MAX_LEVEL} or province/city/county/town/village (省/市/县/乡/村)",
             "bad_level", max=MAX_LEVEL)
    accepts = _yes_no(values.get("accepts_members"))
    if accepts is None:
        fail("accepts_members", "accepts_members must be true or false (是/否, 1/0)", "not_boolean")
    row.accepts_members = bool(accepts)
    row.members = _members(values.get("members"))
    if row.members is None:
        fail("members", "members must be a whole number >= 0", "bad_members")
    return row


def _text(value: object) -> str | None:
    """Cell as stripped text; None for values that are not text-like (lists, bools...)."""
    if type(value) is str:  # the common case (every CSV cell), checked first for speed
        # NFC keeps names as written; is_normalized is cheap on the usual already-NFC text
        return (value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)).strip()
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _whole(value: object) -> int | None:
    if type(value) is str:
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
        value = _WHOLE_FLOAT_RE.fullmatch(text) and float(text)
    if isinstance(value, bool):
        return None  # True is an int in Python, never a count in a file
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _level(value: object) -> int | None:
    level = _whole(value)
    if level is None and isinstance(value, str):
        text = value.strip().lower()
        return LEVEL_NAMES.get(text) or LEVEL_NAMES.get(normalize_header(text))
    return level if level is not None and 1 <= level <= MAX_LEVEL else None


_YES = {"1", "true", "yes", "y", "是", "√", "✓", "可以"}
_NO = {"", "0", "false", "no", "n", "否", "×", "不"}


def _yes_no(value: object) -> bool | None:
    """A yes/no cell (empty: no); None when it is neither."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(int(value) if isinstance(value, float) and value.is_integer() else value).strip().lower()
    return True if text in _YES else False if text in _NO else None


def _members(value: object) -> int | None:
    if value is None or value == "":
        return 0
    if isinstance(value, str) and not value.strip():
        return 0
    return _whole(value)


def _check_structure(rows: list[_Row], existing: OrgTree) -> None:
    """Checks that need the other rows: duplicates, parents, cycles, levels."""
    by_id: dict[str, _Row] = {}
    for row in rows:
        if row.org_id is None:
            continue
        first = by_id.setdefault(row.org_id, row)
        if first is not row:
            row.errors.append(
                RowError(row.row, "org_id", f"duplicate org_id {row.org_id!r} (row {first.row})", "duplicate_org",
                         {"value": row.org_id, "first": first.row})
            )
    in_cycle = _cycle_members(by_id, existing)
    for org_id, row in by_id.items():
        if org_id in in_cycle:
            row.errors.append(
                RowError(row.row, "parent_id", f"parent chain of {org_id!r} loops back to itself", "parent_loop",
                         {"value": org_id})
            )
        else:
            _check_parent_and_level(row, by_id, existing)


def _check_parent_and_level(row: _Row, by_id: dict[str, _Row], existing: OrgTree) -> None:
    def fail(column: str, message: str, code: str = "invalid", **params: object) -> None:
        row.errors.append(RowError(row.row, column, message, code, params))

    if row.parent_id is None:
        if row.level not in (None, 1):
            fail("level", "an org without parent_id is a root and must have level 1", "root_level")
    elif row.parent_id in by_id:
        _check_level(row, by_id[row.parent_id].level, fail)
    elif (parent := existing.get(row.parent_id)) is not None:
        _check_level(row, parent.level, fail)
    else:
        fail("parent_id", f"unknown parent_id {row.parent_id!r}: not in this file nor already imported",
             "unknown_parent", value=row.parent_id)
    # Re-levelling an existing org must not strand its existing children at the wrong level.
    if row.level is not None and row.org_id in existing:
        stranded = [
            c for c in existing.children(row.org_id) if c.org_id not in by_id and c.level != row.level + 1
        ]
        if stranded:
            fail("level", f"level {row.level} does not fit {len(stranded)} existing child org(s)",
                 "level_breaks_children", value=row.level, count=len(stranded))


def _check_level(row: _Row, parent_level: int | None, fail: _Fail) -> None:
    if row.level is not None and parent_level is not None and row.level != parent_level + 1:
        fail("level", f"level must be {parent_level + 1}, one below its parent's level {parent_level}",
             "level_below_parent", expected=parent_level + 1, parent=parent_level)


def _cycle_members(by_id: dict[str, _Row], existing: OrgTree) -> set[str]:
    """Ids whose parent chain (file rows over the existing tree) comes back to them."""

    def parent_of(org_id: str) -> str | None:
        row = by_id.get(org_id)
        if row is not None:
            return row.parent_id
        org = existing.get(org_id)
        return org.parent_id if org is not None else None

    done: set[str] = set()
    in_cycle: set[str] = set()
    for start in by_id:
        path: list[str] = []
        on_path: dict[str, int] = {}
        node: str | None = start
        while node is not None and node not in done and node not in on_path:
            on_path[node] = len(path)
            path.append(node)
            node = parent_of(node)
        if node is not None and node in on_path:
            in_cycle.update(path[on_path[node] :])
        done.update(path)
    return in_cycle


class OrgTree(VersionedById[Org]):
    """Immutable tree of orgs; paths, level lists and member totals are computed on first use."""

    __slots__ = ("_by_level", "_children", "_index", "_paths", "_totals")
    noun = "orgs"
    snapshot_name = "org tree"
    snapshot_error = OrgTreeError

    def __init__(self, orgs: Iterable[Org] = (), version: int = 0) -> None:
        super().__init__(orgs, version)
        children: dict[str | None, list[str]] = {}
        for org in self._by_id.values():
            children.setdefault(org.parent_id, []).append(org.org_id)
        for ids in children.values():
            ids.sort()
        self._children = children
        self._check_levels()
        self._paths: dict[str, tuple[str, ...]] = {}
        self._by_level: dict[int, list[str]] | None = None
        self._totals: dict[str, int] | None = None
        self._index: OrgIndex | None = None

    def _check_levels(self) -> None:
        # Level = parent's level + 1 everywhere makes cycles impossible, so no traversal is needed.
        orgs = self._by_id
        for org in orgs.values():
            parent = orgs.get(org.parent_id) if org.parent_id is not None else None
            expected = 1 if org.parent_id is None else (parent.level + 1 if parent is not None else None)
            if expected is None:
                raise OrgTreeError(f"org {org.org_id!r} has unknown parent {org.parent_id!r}")
            if org.level != expected:
                raise OrgTreeError(f"org {org.org_id!r} has level {org.level}, expected {expected}")

    def _level_index(self) -> dict[int, list[str]]:
        if self._by_level is None:
            by_level: dict[int, list[str]] = {}
            for org in self._by_id.values():
                by_level.setdefault(org.level, []).append(org.org_id)
            for ids in by_level.values():
                ids.sort()
            self._by_level = by_level
        return self._by_level

    def _member_totals(self) -> dict[str, int]:
        if self._totals is None:
            totals: dict[str, int] = {}
            below: dict[str, int] = {}
            # Deepest level first, so every child is summed before its parent is read.
            by_level = self._level_index()
            for level in sorted(by_level, reverse=True):
                for org_id in by_level[level]:
                    org = self._by_id[org_id]
                    total = totals[org_id] = org.members or below.get(org_id, 0)
                    if org.parent_id is not None:
                        below[org.parent_id] = below.get(org.parent_id, 0) + total
            self._totals = totals
        return self._totals

    @classmethod
    def from_orgs(cls, orgs: Iterable[Org], version: int = 0) -> OrgTree:
        return cls(orgs, version)

    @staticmethod
    def id_of(record: Org) -> str:
        return record.org_id

    @staticmethod
    def row_of(record: Org) -> list[Any]:
        return [record.org_id, record.parent_id, record.name, record.level, record.members,
                *([True] if record.accepts_members else [])]

    @staticmethod
    def record_of(row: list[Any]) -> Org:
        # rows of format 1 written before accepts_members have five fields
        return Org(row[0], row[1], row[2], row[3], row[4], bool(row[5]) if len(row) > 5 else False)

    def merged(self, new_orgs: Iterable[Org], *, version: int | None = None) -> OrgTree:
        """A new tree with ``new_orgs`` upserted by id; version defaults to this version + 1."""
        orgs = dict(self._by_id)
        orgs.update((o.org_id, o) for o in new_orgs)
        return OrgTree(orgs.values(), self.version + 1 if version is None else version)

    def __iter__(self) -> Iterator[Org]:
        return iter(self._by_id.values())

    def path(self, org_id: str) -> tuple[str, ...]:
        """Ids from the root down to ``org_id`` (KeyError when unknown)."""
        path = self._paths.get(org_id)
        if path is None:
            parent_id = self._by_id[org_id].parent_id
            path = (org_id,) if parent_id is None else (*self.path(parent_id), org_id)
            self._paths[org_id] = path
        return path

    def path_string(self, org_id: str) -> str:
        """'/root/child/org/': a prefix test on it is a subtree test (ids cannot contain '/')."""
        return "/" + "/".join(self.path(org_id)) + "/"

    def children(self, parent_id: str | None = None) -> list[Org]:
        """Direct children sorted by org_id; ``None`` lists the roots."""
        return [self._by_id[c] for c in self._children.get(parent_id, ())]

    def child_ids(self, parent_id: str | None = None) -> Sequence[str]:
        """Ids of the direct children sorted by org_id (do not modify); ``None``: the roots."""
        return self._children.get(parent_id, ())

    def has_children(self, org_id: str) -> bool:
        return org_id in self._children

    def lone_root(self) -> str | None:
        """The root when the tree has exactly one (a province): its subtree is everyone, so its
        boards are the contest's total and daily boards (leaderboard.keys.board_org)."""
        roots = self._children.get(None, ())
        return roots[0] if len(roots) == 1 else None

    def search_index(self) -> OrgIndex:
        """The name/pinyin-initials index, built on first use (long for a province's tree: build it
        off the event loop, as the catalog does when it loads a tree; loadtest/README.md, "Figures
        behind the code")."""
        if self._index is None:
            self._index = OrgIndex(self)
        return self._index

    def search(self, q: str, *, within: str | None = None, limit: int = 20) -> list[Org]:
        """Up to ``limit`` orgs whose name or pinyin initials contain ``q`` (see OrgIndex.search)."""
        return [self._by_id[i] for i in self.search_index().search(q, within=within, limit=limit)]

    def at_level(self, level: int) -> list[Org]:
        return [self._by_id[o] for o in self._level_index().get(level, ())]

    def level_ids(self, level: int) -> Sequence[str]:
        """Ids of the orgs of ``level``, sorted (do not modify)."""
        return self._level_index().get(level, ())

    def subtree_ids(self, org_id: str) -> set[str]:
        """``org_id`` and every org below it (KeyError when unknown)."""
        if org_id not in self._by_id:
            raise KeyError(org_id)
        found = {org_id}
        queue = [org_id]
        while queue:
            kids = self._children.get(queue.pop(), ())
            found.update(kids)
            queue.extend(kids)
        return found

    def members_total(self, org_id: str) -> int:
        """Imported members when > 0, else the sum over the children (KeyError when unknown)."""
        return self._member_totals()[org_id]

