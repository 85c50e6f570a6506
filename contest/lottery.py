"""Verifiable lottery (抽奖) among qualifying members.

1. Create: a secret seed (32 random bytes, hex) is drawn and only its SHA-256, the commitment,
   is published, before anyone knows who qualifies.
2. Draw: the eligible members are computed from the durable results (the same rows as the
   results export), as sorted user ids; the list is frozen and stored, its SHA-256 published;
   the winners are a partial Fisher-Yates shuffle of that list driven by SHA-256(seed:k); the
   seed is published.
3. Anyone holding the results export and the published lottery recomputes every step
   (``verify``, ``quiz lottery verify CID LID --export FILE``): the seed must hash to the
   commitment, the export must give the same eligible list, and the seed the same winners.

Eligibility is a pure function of results rows: attempts finished by the draw time, not voided,
on days (contest timezone) in [date_from, date_to]; each member's score on the board
(``total``: best or sum over the range, as the contest ranks; ``daily``: the best single day)
at least ``min_score``.  ``org_id`` and ``exclude_flagged`` choose the export to use: the
results export of that org with ``exclude_flagged=1``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from leaderboard import keys

__all__ = ["Eligibility", "commitment_of", "draw_winners", "eligible_users", "list_hash", "new_seed",
           "published_from_redis", "read_results_export", "verify", "verify_cli"]

# results export columns (contest/export.py HEADERS["results"])
_UID, _NAME, _ORG, _SCORE, _FINISHED, _VOIDED = 1, 2, 3, 4, 9, 10


@dataclass(frozen=True, slots=True)
class Eligibility:
    min_score: int = 0
    board: str = "total"  # "total" | "daily"
    date_from: str | None = None  # YYYY-MM-DD, contest timezone, inclusive
    date_to: str | None = None
    exclude_flagged: bool = False
    org_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"min_score": self.min_score, "board": self.board, "date_from": self.date_from,
                "date_to": self.date_to, "exclude_flagged": self.exclude_flagged, "org_id": self.org_id}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Eligibility:
        return cls(int(doc.get("min_score") or 0), str(doc.get("board") or "total"), doc.get("date_from"),
                   doc.get("date_to"), bool(doc.get("exclude_flagged")), doc.get("org_id"))


def new_seed() -> str:
    return secrets.token_hex(32)


def commitment_of(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def list_hash(user_ids: Sequence[str]) -> str:
    """SHA-256 of the sorted eligible user ids, one per line."""
    return hashlib.sha256("\n".join(user_ids).encode()).hexdigest()


def _int(value: Any) -> int:
    if value in (None, ""):
        return 0
    return int(float(value)) if isinstance(value, str) else int(value)


def eligible_users(rows: Iterable[Sequence[Any]], rule: Eligibility, *, ranking: str, timezone: str,
                   cutoff_ms: int) -> list[str]:
    """Sorted user ids that qualify, from results rows (export order of columns)."""
    tz = ZoneInfo(timezone)
    per_day: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        finished = _int(row[_FINISHED])
        if not finished or finished > cutoff_ms or _int(row[_VOIDED]):
            continue
        day = dt.datetime.fromtimestamp(finished / 1000, tz).date().isoformat()
        if (rule.date_from and day < rule.date_from) or (rule.date_to and day > rule.date_to):
            continue
        per_day.setdefault(str(row[_UID]), {}).setdefault(day, []).append(_int(row[_SCORE]))

    def aggregate(scores: list[int]) -> int:
        return sum(scores) if ranking == "sum" else max(scores)

    out = []
    for uid, days in per_day.items():
        if rule.board == "daily":
            score = max(aggregate(s) for s in days.values())
        else:
            score = aggregate([x for s in days.values() for x in s])
        if score >= rule.min_score:
            out.append(uid)
    return sorted(out)


def draw_winners(seed: str, eligible: Sequence[str], winners: int) -> list[str]:
    """``winners`` of ``eligible`` (sorted ids), deterministic in the seed: a partial Fisher-Yates
    shuffle whose k-th swap index is SHA-256(seed ':' k) mod (n - k) (64 bits: no visible bias)."""
    pool = list(eligible)
    n = len(pool)
    for k in range(min(winners, n)):
        digest = hashlib.sha256(f"{seed}:{k}".encode()).digest()
        j = k + int.from_bytes(digest[:8], "big") % (n - k)
        pool[k], pool[j] = pool[j], pool[k]
    return pool[: min(winners, n)]


def read_results_export(data: bytes, filename: str = "") -> list[list[Any]]:
    """Rows of a results export (CSV with its BOM, or XLSX), header dropped, neutralised cells
    ("'=..." written for spreadsheets) read back as written by the service."""
    if data[:2] == b"PK" or filename.endswith(".xlsx"):
        import openpyxl  # imported lazily: it is slow to import and only needed for an XLSX export

        sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
        if sheet is None:
            raise ValueError("not a results export: the workbook has no active worksheet")
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    else:
        rows = [list(r) for r in csv.reader(io.StringIO(data.decode("utf-8-sig")))]
    if not rows or rows[0][:2] != ["attempt_id", "user_id"]:
        raise ValueError("not a results export: the header must start with attempt_id,user_id")
    return [r for r in rows[1:] if r]


def verify(published: dict[str, Any], export_rows: Iterable[Sequence[Any]]) -> list[str]:
    """Why ``published`` does not follow from the seed and the export; empty when it matches."""
    problems = []
    seed = str(published.get("seed") or "")
    if not seed:
        return ["the lottery has not been drawn: no seed is published yet"]
    if commitment_of(seed) != published.get("commitment"):
        problems.append("the seed does not hash to the commitment published before the draw")
    rule = Eligibility.from_dict(published.get("eligibility") or {})
    eligible = eligible_users(export_rows, rule, ranking=str(published.get("ranking") or "best"),
                              timezone=str(published.get("timezone") or "Asia/Shanghai"),
                              cutoff_ms=int(published.get("drawn_at") or 0))
    if len(eligible) != published.get("eligible_count") or list_hash(eligible) != published.get("eligible_hash"):
        problems.append(f"the export gives {len(eligible)} eligible members (hash {list_hash(eligible)[:12]}...),"
                        f" the lottery published {published.get('eligible_count')}"
                        f" (hash {str(published.get('eligible_hash'))[:12]}...)")
    expected = draw_winners(seed, eligible, int(published.get("winners_count") or 0))
    got = [w["user_id"] for w in published.get("winners") or []]
    if expected != got:
        problems.append(f"the seed draws {expected}, the lottery published {got}")
    return problems


async def published_from_redis(redis: Any, contest_id: str, lottery_id: str) -> bytes | None:
    """The lottery's document as stored (seed included only once drawn)."""
    raw = await redis.hget(keys.lottery(contest_id, lottery_id), keys.LOTTERY_DOC)
    return bytes(raw) if raw is not None else None


def verify_cli(published: bytes, export: Path) -> int:
    """``quiz lottery verify``: prints match (exit 0) or mismatch and why (exit 1)."""
    doc = orjson.loads(published)
    try:
        rows = read_results_export(export.read_bytes(), export.name)
    except (OSError, ValueError) as exc:
        print(f"mismatch: cannot read the export {export}: {exc}")
        return 1
    problems = verify(doc, rows)
    name = f"{doc.get('contest_id')}/{doc.get('lottery_id')}"
    if problems:
        print(f"mismatch: lottery {name}")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(f"match: lottery {name}: seed matches the commitment; {doc.get('eligible_count')} eligible members,"
          f" list hash {doc.get('eligible_hash')}; winners {[w['user_id'] for w in doc.get('winners') or []]}")
    return 0
