"""The packed answer entry of a contest's event stream: one field, the answers row as text.

Answers are nine in ten entries of a contest stream. Written as eleven field/value pairs (the
``t=ans`` form, still read), each one cost Valkey a listpack walk of 22 strings on XREADGROUP,
hiredis 25 Python objects, and the flusher a pass to pick the values out; packed, an entry is
one field whose value is already a line of PostgreSQL's COPY text format: the flusher joins the
values with newlines and hands them to COPY as they came (loadtest/README.md, "Flusher").

The value holds ``ANSWER_ENTRY_FIELDS`` in order, tab-separated: the ``answers`` table's
columns. None can hold a tab, a newline, a CR or a backslash (ids match ``[A-Za-z0-9_.:~-]``
and question ids ``\\w``; choices are option letters), so no escaping is needed; a reader still
checks, and any entry that breaks the rule goes down the parsed path, where it is refused by
name rather than stored wrong.
"""

from __future__ import annotations

__all__ = ["ANSWER_ENTRY", "ANSWER_ENTRY_FIELDS", "LUA_XADD_ANSWER", "entry_fields", "pack_answer", "unpack_answer"]

# the entry's only field name: a stream entry whose first field is this is a packed answer
ANSWER_ENTRY = "a"

# the event fields of docs/events.md's ``ans`` entry, in the order of the answers table's columns
ANSWER_ENTRY_FIELDS = ("aid", "i", "cid", "uid", "qid", "ch", "ok", "pts", "at", "fl")

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


def pack_answer(event: dict[str, str]) -> str:
    """The packed value of an ``ans`` event (its ``t`` is not part of it)."""
    return "\t".join(str(event[name]) for name in ANSWER_ENTRY_FIELDS)


def unpack_answer(value: str) -> dict[str, str]:
    """A packed value as docs/events.md's ``ans`` event; ValueError when it is not one."""
    parts = value.split("\t")
    if len(parts) != len(ANSWER_ENTRY_FIELDS):
        raise ValueError(f"a packed answer holds {len(ANSWER_ENTRY_FIELDS)} tab-separated values, not {len(parts)}")
    event = dict(zip(ANSWER_ENTRY_FIELDS, parts, strict=True))
    event["t"] = "ans"
    return event


def entry_fields(event: dict[str, str]) -> dict[str, str]:
    """The fields the scripts XADD for a docs/events.md event: an ``ans`` packed, the rest as is
    (for tools and tests that fill a stream the way the scripts do)."""
    if event.get("t") == "ans":
        return {ANSWER_ENTRY: pack_answer(event)}
    return event
