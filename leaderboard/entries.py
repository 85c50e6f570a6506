"""The packed entries of a contest's event stream: one field, the table row as COPY text.

Answers are nine in ten entries of a contest stream, and every attempt has a start. Written as
field/value pairs (the ``t=ans`` / ``t=start`` form, still read), each cost Valkey a listpack
walk of 20-odd strings on XREADGROUP, hiredis as many Python objects, and the flusher a pass to
pick the values out and a dict per start. Packed, an entry is one field whose value is already
a line of PostgreSQL's COPY text format for its table: the flusher joins the values with
newlines and hands them to COPY as they came (loadtest/README.md, "Flusher").

A value holds its kind's fields in order, tab-separated: the columns of its table (``answers``,
or ``attempts``' start columns). None can hold a tab, a newline, a CR or a backslash (ids match
``[A-Za-z0-9_.:~-]`` and question ids ``\\w``; choices are option letters; a paper is JSON of
those ids and digits; a start always has its day and paper, so no column is NULL), so no
escaping is needed; a reader still checks, and any entry that breaks the rule goes down the
parsed path, where it is refused by name rather than stored wrong.
"""

from __future__ import annotations

__all__ = [
    "ANSWER_ENTRY",
    "ANSWER_ENTRY_FIELDS",
    "LUA_XADD_ANSWER",
    "LUA_XADD_START",
    "PACKED_KINDS",
    "START_ENTRY",
    "START_ENTRY_FIELDS",
    "entry_fields",
    "pack_answer",
    "unpack_answer",
    "unpack_entry",
]

# an entry's only field name says its kind: a packed answer, a packed start
ANSWER_ENTRY = "a"
START_ENTRY = "s"

# the fields of docs/events.md's ``ans`` and ``start`` events, in their table's column order
ANSWER_ENTRY_FIELDS = ("aid", "i", "cid", "uid", "qid", "ch", "ok", "pts", "at", "fl")
START_ENTRY_FIELDS = ("aid", "cid", "uid", "org", "path", "at", "dl", "day", "paper")

# field name -> (the event's ``t``, its fields in order)
PACKED_KINDS = {ANSWER_ENTRY: ("ans", ANSWER_ENTRY_FIELDS), START_ENTRY: ("start", START_ENTRY_FIELDS)}

# Lua's `..` formats a number with %.14g: whole numbers below 10^14 (a ms timestamp until the
# year 5138, any points total) come out as plain digits, as tostring and XADD's own argument
# conversion would give them.
LUA_XADD_ANSWER = r"""
local function xadd_answer(stream, aid, i, cid, uid, qid, ch, ok, pts, at, fl)
  redis.call('XADD', stream, '*', 'a',
    aid .. '\t' .. i .. '\t' .. cid .. '\t' .. uid .. '\t' .. qid .. '\t' .. ch .. '\t' .. ok .. '\t'
    .. pts .. '\t' .. at .. '\t' .. fl)
end
"""
LUA_XADD_START = r"""
local function xadd_start(stream, aid, cid, uid, org, path, at, dl, day, paper)
  redis.call('XADD', stream, '*', 's',
    aid .. '\t' .. cid .. '\t' .. uid .. '\t' .. org .. '\t' .. path .. '\t' .. at .. '\t' .. dl .. '\t'
    .. day .. '\t' .. paper)
end
"""


def _pack(event: dict[str, str], fields: tuple[str, ...]) -> str:
    return "\t".join(str(event[name]) for name in fields)


def pack_answer(event: dict[str, str]) -> str:
    """The packed value of an ``ans`` event (its ``t`` is not part of it)."""
    return _pack(event, ANSWER_ENTRY_FIELDS)


def unpack_entry(name: str, value: str) -> dict[str, str]:
    """A packed entry (its field ``name`` and value) as docs/events.md's event; ValueError when it
    is not one."""
    kind, fields = PACKED_KINDS[name]
    parts = value.split("\t")
    if len(parts) != len(fields):
        raise ValueError(f"a packed {kind} holds {len(fields)} tab-separated values, not {len(parts)}")
    event = dict(zip(fields, parts, strict=True))
    event["t"] = kind
    return event


def unpack_answer(value: str) -> dict[str, str]:
    """A packed answer's value as docs/events.md's ``ans`` event; ValueError when it is not one."""
    return unpack_entry(ANSWER_ENTRY, value)


def entry_fields(event: dict[str, str]) -> dict[str, str]:
    """The fields the scripts XADD for a docs/events.md event: an ``ans`` or ``start`` packed, the
    rest as is (for tools and tests that fill a stream the way the scripts do)."""
    for name, (kind, fields) in PACKED_KINDS.items():
        if event.get("t") == kind:
            return {name: _pack(event, fields)}
    return event
