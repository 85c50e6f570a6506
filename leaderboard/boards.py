"""Reading boards: a page with competition ranks, and a member's rank with the entries around it.

Both are one Lua call (``LEADERBOARD_PAGE`` / ``LEADERBOARD_ME``): ranks are computed with
ZCOUNT over strictly greater encoded scores, so equal (score, duration) share a rank ("1224").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from leaderboard.encoding import decode
from leaderboard.scripts import LEADERBOARD_ME, LEADERBOARD_PAGE, Script

__all__ = ["Entry", "MeResult", "Page", "Runner", "mask_name", "read_me", "read_page"]


class Runner(Protocol):
    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class Entry:
    rank: int
    user_id: str
    name: str
    org_id: str
    score: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    entries: list[Entry]


@dataclass(frozen=True, slots=True)
class MeResult:
    total: int
    rank: int | None
    score: int | None
    duration_ms: int | None
    around: list[Entry]

    @property
    def percentile(self) -> float | None:
        """Share of the other entrants ranked below this one, in percent ("better than X%")."""
        if self.rank is None:
            return None
        if self.total <= 1:
            return 100.0
        return round(100.0 * (self.total - self.rank) / (self.total - 1), 2)


def mask_name(name: str) -> str:
    """Public boards never show full names: the first character and an asterisk (张三 -> 张*)."""
    return f"{name[:1]}*" if name else "*"


def _entries(rows: Sequence[Any]) -> list[Entry]:
    out = []
    for j in range(0, len(rows), 4):
        uid, encoded, rank, meta = rows[j : j + 4]
        name, _, org = (meta.decode() if isinstance(meta, bytes) else meta).partition("\t")
        score, duration = decode(encoded)
        out.append(Entry(int(rank), uid.decode() if isinstance(uid, bytes) else uid, name, org, score, duration))
    return out


async def read_page(runner: Runner, board: str, names: str, offset: int, limit: int) -> Page:
    reply = await runner.run(LEADERBOARD_PAGE, (board, names), (offset, limit))
    return Page(int(reply[0]), _entries(reply[1:]))


async def read_me(runner: Runner, board: str, names: str, user_id: str, around: int) -> MeResult:
    reply = await runner.run(LEADERBOARD_ME, (board, names), (user_id, around))
    total = int(reply[0])
    if len(reply) == 1:
        return MeResult(total, None, None, None, [])
    score, duration = decode(reply[1])
    return MeResult(total, int(reply[2]), score, duration, _entries(reply[3:]))
