"""Search of the org tree by name or pinyin initials, for the registration picker.

Built once per tree (when a worker loads it), searched per keystroke. Per level, the lower-cased
names are one string with the units in tree (depth-first) order, each on its own line, and so are
their pinyin initials; a query is ``str.find`` over those strings (C speed: even a query that
matches nothing in a province's tree is quick; loadtest/README.md, "Figures behind the code")
and a hit's line is found by bisection. Depth-first order makes every subtree one contiguous slice of each string, so a
search below an org is the same scan over a shorter slice.

Initials come from pypinyin's per-character table. A character with several readings (长 chang/
zhang, 重 chong/zhong) contributes each, so a name has a few initials strings (at most
``MAX_SPELLINGS``): "cqs" and "zqs" both find 重庆市. Names are only read, never rewritten.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import orjson

__all__ = ["MAX_QUERY_CHARS", "MAX_SPELLINGS", "OrgIndex", "initials", "normalize_query"]

MAX_SPELLINGS = 16
MAX_QUERY_CHARS = 40
_SEP = "\n"


@lru_cache(maxsize=1)
def _letter_table() -> dict[int, str]:
    """Code point -> the distinct first letters of its readings, most common first ("长" -> "cz").

    From pypinyin's per-character table, read as the data file it is: importing the pypinyin
    package would also load its phrase dictionary, tens of megabytes in every worker for nothing
    here (loadtest/README.md, "Figures behind the code").
    """
    spec = importlib.util.find_spec("pypinyin")
    data = Path(spec.origin).parent / "pinyin_dict.json" if spec is not None and spec.origin else None
    if data is not None and data.is_file():
        readings: dict[int, str] = {int(cp): r for cp, r in orjson.loads(data.read_bytes()).items()}
    else:  # pragma: no cover - a pypinyin that ships its table differently
        from pypinyin.pinyin_dict import pinyin_dict as readings
    table: dict[int, str] = {}
    for cp, spelled in readings.items():
        letters = ""
        for reading in spelled.split(","):
            letter = unicodedata.normalize("NFKD", reading)[:1].lower()
            if letter.isascii() and letter.isalpha() and letter not in letters:
                letters += letter
        if letters:
            table[cp] = letters
    return table


def _letters(ch: str) -> str:
    """The first letters ``ch`` can be spelled with ('' for punctuation and unknown characters)."""
    if ch.isascii():
        return ch.lower() if ch.isalnum() else ""
    return _letter_table().get(ord(ch), "")


def initials(name: str) -> list[str]:
    """Pinyin initials of ``name`` ("重庆市" -> ["zqs", "cqs", ...]), the most common reading first."""
    spellings = [""]
    for ch in unicodedata.normalize("NFKC", name):
        letters = _letters(ch)
        if not letters:
            continue
        if len(spellings) * len(letters) > MAX_SPELLINGS:
            letters = letters[0]
        spellings = [s + letter for s in spellings for letter in letters]
    return [s for s in spellings if s]


def normalize_query(q: str) -> str:
    """What is searched for: NFKC, lower case, no whitespace or control characters."""
    q = unicodedata.normalize("NFKC", q).lower()
    return "".join(ch for ch in q if not ch.isspace() and unicodedata.category(ch)[0] != "C")


class _Level:
    """One level's units in depth-first order: their names and their initials, one per line."""

    __slots__ = ("ini_owner", "ini_starts", "initials", "name_starts", "names", "pre")

    def __init__(self, pre: Iterable[int], names: list[str]) -> None:
        self.pre = array("l", pre)  # depth-first number of each unit, ascending
        self.names, self.name_starts = _joined(n.lower() for n in names)
        owner: list[int] = []
        lines: list[str] = []
        known: dict[str, list[str]] = {}  # names repeat a lot (王家村): spell each once
        for k, name in enumerate(names):
            spellings = known.get(name)
            if spellings is None:
                spellings = known[name] = initials(name)
            owner.extend([k] * len(spellings))
            lines.extend(spellings)
        self.initials, self.ini_starts = _joined(lines)
        self.ini_owner = array("l", owner)

    def scan(self, q: str, k_lo: int, k_hi: int, want: int, *, spelled: bool) -> list[tuple[bool, int]]:
        """Up to ``want`` (prefix match, unit number) for units ``k_lo..k_hi`` containing ``q``."""
        if spelled:
            hay, starts, owner = self.initials, self.ini_starts, self.ini_owner
            lo, hi = bisect_left(owner, k_lo), bisect_left(owner, k_hi)
        else:
            hay, starts, owner, lo, hi = self.names, self.name_starts, None, k_lo, k_hi
        if lo >= hi:
            return []
        end = starts[hi] - 1 if hi < len(starts) else len(hay)
        found: list[tuple[bool, int]] = []
        last = -1
        pos = hay.find(q, starts[lo], end)
        while pos >= 0 and len(found) < want:
            line = bisect_right(starts, pos, lo, hi) - 1
            k = owner[line] if owner is not None else line
            if k != last:
                found.append((pos == starts[line], k))
                last = k
            nxt = line + 1
            pos = hay.find(q, starts[nxt], end) if nxt < hi else -1
        return found


def _joined(lines: Iterable[str]) -> tuple[str, array[int]]:
    """The lines joined by newlines, and where each starts."""
    starts = array("l")
    parts: list[str] = []
    at = 0
    for line in lines:
        starts.append(at)
        parts.append(line)
        at += len(line) + 1
    return _SEP.join(parts), starts


class _Unit(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def level(self) -> int: ...


class Tree(Protocol):
    """What the index reads of an org tree: a Protocol rather than contest.orgtree.OrgTree itself,
    since the tree builds its index and so imports this module."""

    def child_ids(self, parent_id: str | None = None) -> Sequence[str]: ...

    def __getitem__(self, org_id: str) -> _Unit: ...


class OrgIndex:
    """Name and initials search over one OrgTree (immutable, like the tree)."""

    __slots__ = ("_end", "_ids", "_levels", "_pre")

    def __init__(self, tree: Tree) -> None:
        ids: list[str] = []
        end: list[int] = []
        stack: list[tuple[str, bool]] = [(org_id, False) for org_id in reversed(tree.child_ids(None))]
        pre: dict[str, int] = {}
        while stack:  # depth-first: number each unit, then (on the way back) where its subtree ends
            org_id, done = stack.pop()
            if done:
                end[pre[org_id]] = len(ids)
                continue
            pre[org_id] = len(ids)
            ids.append(org_id)
            end.append(0)
            stack.append((org_id, True))
            stack.extend((c, False) for c in reversed(tree.child_ids(org_id)))
        by_level: dict[int, list[int]] = {}
        for n, org_id in enumerate(ids):
            by_level.setdefault(tree[org_id].level, []).append(n)
        self._ids = ids
        self._pre = pre
        self._end = array("l", end)
        self._levels = {
            level: _Level(numbers, [tree[ids[n]].name for n in numbers]) for level, numbers in sorted(by_level.items())
        }

    def search(self, q: str, *, within: str | None = None, limit: int = 20) -> list[str]:
        """Ids of up to ``limit`` units whose name contains ``q`` or whose initials do.

        Higher levels first (a county before the villages named like it), and within a level the
        names that start with ``q`` first, then tree order. ``within`` limits it to that org's
        subtree (KeyError when unknown). ``q`` is normalized here.
        """
        q = normalize_query(q)[:MAX_QUERY_CHARS]
        if not q or limit <= 0:
            return []
        lo, hi = 0, len(self._ids)
        if within is not None:
            lo = self._pre[within]
            hi = self._end[lo]
        spelled = q.isascii() and q.isalpha()
        out: list[str] = []
        for level in self._levels.values():
            k_lo, k_hi = bisect_left(level.pre, lo), bisect_left(level.pre, hi)
            hits = level.scan(q, k_lo, k_hi, limit, spelled=False)
            if spelled:
                hits += level.scan(q, k_lo, k_hi, limit, spelled=True)
            seen: set[int] = set()
            for _, k in sorted(hits, key=lambda hit: (not hit[0], hit[1])):
                if k not in seen:
                    seen.add(k)
                    out.append(self._ids[level.pre[k]])
                    if len(out) == limit:
                        return out
        return out
