"""Verifiable certificates (issue 15 item 3): issue once per qualifying attempt, verify by serial.

A contest sets ``certificate: {min_score, title}``.  The owner of a finished attempt scoring at
least ``min_score`` gets a PNG; the first request issues it: an unguessable serial (100 random
bits, base32) written straight to the database (``certificates``, one row per attempt, so every
later request shows the same serial, rank and date).  Anyone can verify a serial; a certificate
whose attempt was later voided by a review verifies as ``valid: false`` with the review's reason
(the void reaches the database through the flusher, normally within a second).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
import time
from dataclasses import dataclass
from typing import Any

from contest.auth import Claims
from contest.catalog import Catalog
from contest.certificate_image import CertificateText, FontMissing, find_cjk_font, render_certificate
from contest.contests import Contest
from contest.errors import Forbidden, NotFound, Unavailable
from contest.play import parse_attempt_id
from contest.recap import Recap
from contest.storage.base import Storage
from leaderboard import keys
from leaderboard.boards import count_above, mask_name

__all__ = ["Certificates", "new_serial"]


def new_serial() -> str:
    """20 characters of base32 (A-Z, 2-7): 100 random bits, easy to read out over the phone."""
    return base64.b32encode(secrets.token_bytes(15)).decode()[:20]


@dataclass(slots=True)
class Certificates:
    redis: Any
    storage: Storage
    catalog: Catalog

    async def _rank(self, contest: Contest, user_id: str, shard: int) -> int | None:
        """The user's rank on the total board now (the rank printed is the rank at issue)."""
        cid = contest.contest_id
        board = keys.board(cid, shard=shard)
        mine = await self.redis.zscore(board, user_id)
        if mine is None:
            return None
        rank = int(await self.redis.zcount(board, f"({mine}", "+inf")) + 1
        if contest.shards > 1:
            others = [keys.board(cid, shard=s) for s in range(contest.shards) if s != shard]
            rank += await count_above(self.redis, others, float(mine))
        return rank

    async def issue(self, claims: Claims, contest: Contest, attempt_id: str) -> dict[str, Any]:
        """The certificate row of the caller's attempt, issued now if it has none."""
        setting = contest.config.get("certificate")
        if not setting:
            raise NotFound("本竞赛不颁发证书 (this contest has no certificate)")
        record = await Recap(self.redis, self.storage, self.catalog).owned_finished(claims, contest, attempt_id)
        if record.score < int(setting["min_score"]):
            raise Forbidden(f"得分未达到 {setting['min_score']} 分，暂不能领取证书"
                            f" (a certificate needs {setting['min_score']} points)",
                            {"min_score": int(setting["min_score"]), "score": record.score}, code="not_qualified")
        _, shard = parse_attempt_id(attempt_id)
        user_key = keys.user_contest(contest.contest_id, claims.user_id, shard)
        if await self.redis.hexists(user_key, keys.USER_VOIDED + attempt_id):
            raise Forbidden("本次答题已被判定无效，不能领取证书 (this attempt was voided)", code="attempt_voided")
        org = self.catalog.orgs.get(record.org_id)
        path = self.catalog.orgs.path(record.org_id) if org is not None else ()
        unit = " ".join(o.name for o in (self.catalog.orgs.get(p) for p in path[-3:]) if o is not None)
        row = {
            "serial": new_serial(), "attempt_id": attempt_id, "contest_id": contest.contest_id,
            "user_id": claims.user_id, "name": claims.name, "org_id": record.org_id, "org_name": unit,
            "score": record.score, "rank": await self._rank(contest, claims.user_id, shard),
            "title": setting.get("title") or "荣誉证书", "issued_at": int(time.time() * 1000),
        }
        return await self.storage.save_certificate(row)

    async def png(self, contest: Contest, row: dict[str, Any], verify_url: str) -> bytes:
        """The PNG of an issued certificate (rendered in a thread: it is CPU work)."""
        day = dt.datetime.fromtimestamp(int(row["issued_at"]) / 1000, tz=contest.tz)
        text = CertificateText(
            title=row["title"] or "荣誉证书", name=row["name"] or "", unit=row["org_name"] or "",
            contest=contest.config.get("title") or contest.contest_id, score=int(row["score"]),
            rank=int(row["rank"]) if row.get("rank") else None, date=f"{day.year}年{day.month}月{day.day}日",
            serial=row["serial"], verify_url=verify_url)
        try:
            font = await asyncio.to_thread(find_cjk_font)
        except FontMissing as exc:
            raise Unavailable(str(exc)) from None
        return await asyncio.to_thread(render_certificate, text, font)

    async def verify(self, serial: str) -> dict[str, Any]:
        """The public facts of a certificate; 404 for a serial nobody issued."""
        row = await self.storage.load_certificate(serial.strip().upper()) if serial.isalnum() else None
        if row is None:
            raise NotFound("没有这个编号的证书 (no certificate with this serial)")
        contest = self.catalog.contests.get(row["contest_id"])
        valid = not int(row.get("voided") or 0)
        body = {"valid": valid, "serial": row["serial"], "contest_id": row["contest_id"],
                "contest": contest.config.get("title") if contest is not None else row["contest_id"],
                "title": row["title"], "masked_name": mask_name(row["name"] or ""), "score": int(row["score"]),
                "rank": row["rank"], "issued_at": int(row["issued_at"])}
        if not valid:
            body["reason"] = row.get("reason") or "答题被判定无效 (the attempt was voided)"
        return body
