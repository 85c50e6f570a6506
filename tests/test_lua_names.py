"""The Lua scripts and leaderboard/keys.py name the same hash fields and key suffixes.

The scripts write field names as literals (an ARGV per name would cost every answer its parsing),
so keys.py documents them; these tests read every script's source and fail on a field name or a
key suffix keys.py does not define, or on one keys.py defines that no script uses.
"""

from __future__ import annotations

import re

from leaderboard import keys, ratelimit_scripts, review_scripts, signin_scripts, staff_scripts, stream_scripts
from leaderboard import scripts as play_scripts
from leaderboard.scripts import Script

_MODULES = (play_scripts, review_scripts, ratelimit_scripts, signin_scripts, staff_scripts, stream_scripts)
# hash commands -> which arguments after the key are field names: "all", "pairs" (field, value, ...)
# or "first"
_HASH_COMMANDS = {"HMGET": "all", "HSET": "pairs", "HGET": "first", "HDEL": "all", "HEXISTS": "first",
                  "HINCRBY": "first", "HSETNX": "first"}
_CALL = re.compile(r"redis\.call\('([A-Z]+)',")
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _scripts() -> list[Script]:
    found = {id(v): v for m in _MODULES for v in vars(m).values() if isinstance(v, Script)}
    assert len(found) >= 12, "a script module lost its scripts?"
    return list(found.values())


def _code(source: str) -> str:
    """The Lua without its comments (no string in these scripts holds '--')."""
    return re.sub(r"--[^\n]*", "", source)


def _split_args(text: str, start: int) -> list[str]:
    """The top-level comma-separated arguments of the call whose '(' is just before ``start``."""
    args, depth, current, i = [], 0, [], start
    while True:
        c = text[i]
        if c == "'":
            end = _LITERAL.match(text, i)
            assert end is not None
            current.append(end.group(0))
            i = end.end()
            continue
        if c in "({[":
            depth += 1
        elif c in ")}]":
            if depth == 0:
                args.append("".join(current).strip())
                return args
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(c)
        i += 1


def _literals(expression: str) -> list[str]:
    """The string literals of a field expression like ``'c:' .. day`` or ``qid .. ':n'``."""
    return [m.group(1) for m in _LITERAL.finditer(expression)]


def _lua_fields() -> dict[str, set[str]]:
    """Every literal part of a hash field name in the scripts -> the scripts that use it."""
    used: dict[str, set[str]] = {}
    for script in _scripts():
        code = _code(script.source)
        fields: list[str] = []
        for call in _CALL.finditer(code):
            command = call.group(1)
            if command not in _HASH_COMMANDS:
                continue
            args = _split_args(code, call.end())[1:]  # after the key
            if args and args[0].startswith("unpack("):
                continue  # START's table of fields, read below
            kind = _HASH_COMMANDS[command]
            fields += args if kind == "all" else args[::2] if kind == "pairs" else args[:1]
        # START builds its HSET as a table: {'uid', ARGV[1], 'st', now, ...} then appends pairs
        for table in re.finditer(r"local fields = \{", code):
            fields += _split_args(code, table.end())[::2]
        fields += re.findall(r"fields\[#fields \+ 1\] = ('[^\n]*)", code)
        for expression in fields:
            for literal in _literals(expression):
                used.setdefault(literal, set()).add(script.name)
    return used


def _lua_suffixes() -> dict[str, set[str]]:
    """Every literal appended to a contest prefix (or to a daily board key) -> its scripts."""
    used: dict[str, set[str]] = {}
    for script in _scripts():
        for literal in re.findall(r"\b(?:prefix|daily) \.\. '([^']*)'", _code(script.source)):
            used.setdefault(literal, set()).add(script.name)
    return used


def test_every_hash_field_a_script_uses_is_defined_in_keys() -> None:
    used = _lua_fields()
    assert {"st", "dl", "la", "fa", "cc", "rl", "c:", ":n", "a:"} <= set(used)  # the reader works
    unknown = {name: sorted(by) for name, by in used.items() if name not in keys.HASH_FIELDS}
    assert not unknown, f"hash fields used by Lua but not defined and explained in leaderboard/keys.py: {unknown}"


def test_every_field_keys_defines_for_the_scripts_hashes_is_used() -> None:
    used = _lua_fields()
    lua_hashes = (*keys.ATTEMPT_FIELDS, *keys.USER_CONTEST_FIELDS, *keys.STATS_FIELDS, *keys.QSTATS_FIELDS,
                  *keys.TIMELINE_FIELDS, keys.REGISTRANTS_ALL, keys.SMS_CODE_HMAC, keys.SMS_CODE_TRIES)
    stale = sorted(name for name in lua_hashes if name not in used)
    assert not stale, f"leaderboard/keys.py defines fields no script uses any more: {stale}"


def test_every_key_suffix_a_script_builds_is_defined_in_keys() -> None:
    board = keys.SUFFIX_BOARD
    allowed = {keys.SUFFIX_ATTEMPT, keys.SUFFIX_USER, keys.SUFFIX_STATS, keys.SUFFIX_QSTATS, keys.SUFFIX_EVENTS,
               keys.SUFFIX_DEADLINES, keys.SUFFIX_TIMELINE, keys.SUFFIX_NAMES, keys.SUFFIX_ORG_BOARD,
               keys.SUFFIX_DAILY_EXPIRY,
               board + keys.BOARD_TOTAL, board + keys.BOARD_TOTAL + keys.SUFFIX_ORG_BOARD, board + keys.BOARD_DAILY,
               *(keys.SUFFIX_ORG_STAT + what
                 for what in (keys.ORG_STAT_PARTICIPANTS, keys.ORG_STAT_ATTEMPTS, keys.ORG_STAT_SCORE)),
               *(f"{keys.SUFFIX_ORG_RANK}{metric}:" for metric in keys.ORG_METRICS)}
    used = _lua_suffixes()
    assert {"u:", "lb:d:", "os:p"} <= set(used)  # the reader works
    unknown = {suffix: sorted(by) for suffix, by in used.items() if suffix not in allowed}
    assert not unknown, f"key suffixes built by Lua but not defined in leaderboard/keys.py: {unknown}"


def test_python_builds_the_same_keys_the_scripts_do() -> None:
    prefix = keys.contest_prefix("c1")
    assert keys.board("c1") == prefix + "lb:t"
    assert keys.board("c1", "2026-12-03", "o9") == prefix + "lb:d:2026-12-03:o:o9"
    assert keys.board("c1", org_id="o9") == prefix + "lb:t:o:o9"
    assert keys.org_stat("c1", keys.ORG_STAT_SCORE) == prefix + "os:s"
    assert keys.org_level_rank("c1", "avg_score", 3) == prefix + "or:avg_score:3"
    assert keys.user_contest("c1", "42") == prefix + "u:42"
    assert keys.deadlines("c1") == prefix + "deadlines"
    assert keys.names("c1") == prefix + "names"


def test_no_lua_outside_leaderboard() -> None:
    """All Lua lives in leaderboard/: no other package of the product defines a script."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = [str(path.relative_to(root)) for package in ("contest", "question_bank")
                 for path in (root / package).rglob("*.py")
                 if "redis.call(" in path.read_text(encoding="utf-8") or "register_script(\"" in path.read_text(
                     encoding="utf-8")]
    assert not offenders, f"Lua outside leaderboard/: {offenders}"
