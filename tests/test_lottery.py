"""Verifiable lottery (issue 16 item 6): commitment first, the draw freezes the eligible list and
publishes the seed; ``quiz lottery verify`` recomputes it from the results export and reports a
tampered export or seed as a mismatch."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from contest.lottery import Eligibility, draw_winners, eligible_users
from contest.settings import Settings
from tests.fixtures.app import admin_headers, seed_contest
from tests.fixtures.waiting import until

ZH = {"Accept-Language": "zh-CN"}


def test_draw_is_deterministic_and_eligibility_follows_the_rule() -> None:
    ids = [f"u{i}" for i in range(10)]
    assert draw_winners("s", ids, 3) == draw_winners("s", ids, 3) != draw_winners("t", ids, 3)
    assert len(set(draw_winners("s", ids, 10))) == 10 and draw_winners("s", ids[:2], 5) == draw_winners("s", ids[:2], 2)
    t0 = 1_767_225_600_000  # 2026-01-01 08:00 in Shanghai
    rows = [["a1", "u1", "甲", "o", 30, 0, 0, 0, 0, t0, 0], ["a2", "u1", "甲", "o", 50, 0, 0, 0, 0, t0 + 86_400_000, 0],
            ["a3", "u2", "乙", "o", 40, 0, 0, 0, 0, t0, 0], ["a4", "u3", "丙", "o", 90, 0, 0, 0, 0, t0, 1]]
    rule = Eligibility(min_score=45)
    kw: dict[str, Any] = {"timezone": "Asia/Shanghai", "cutoff_ms": t0 + 10**9}
    assert eligible_users(rows, rule, ranking="best", **kw) == ["u1"]  # u3's attempt is voided
    assert eligible_users(rows, rule, ranking="sum", **kw) == ["u1"]
    assert eligible_users(rows, Eligibility(min_score=60), ranking="sum", **kw) == ["u1"]
    assert eligible_users(rows, Eligibility(min_score=60, board="daily"), ranking="sum", **kw) == []
    assert eligible_users(rows, Eligibility(date_to="2026-01-01"), ranking="best", **kw) == ["u1", "u2"]
    assert eligible_users(rows, Eligibility(), ranking="best", timezone="Asia/Shanghai", cutoff_ms=t0 - 1) == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "contest.cli", *args], capture_output=True, text=True, timeout=60,
                          check=False)


async def test_lottery_commit_draw_publish_and_verify(client: TestClient, app_settings: Settings,
                                                      tmp_path: Path) -> None:
    seeded = await seed_contest(client)
    cid, h = seeded.contest_id, admin_headers()
    for i in range(5):
        user = await seeded.register(name=f"抽奖{i}号")
        attempt = await (await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])).json()
        answers = [{"index": q["index"], "choice": q["options"][i % 2]["key"]} for q in attempt["questions"]]
        resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/submit", headers=user["headers"],
                                 json={"answers": answers})
        assert resp.status == 200

    async def flushed() -> bool:
        resp = await client.get(f"/api/v1/admin/contests/{cid}/export?what=results", headers=h)
        return len((await resp.read()).decode("utf-8-sig").strip().splitlines()) == 6

    await until(flushed, within=10, what="five results in the database")

    # bad bodies: Chinese, both ends of a date range named
    resp = await client.post(f"/api/v1/admin/contests/{cid}/lotteries", headers={**h, **ZH}, json={
        "name": "幸运奖", "winners": 0, "eligibility": {"date_from": "2026-02-01", "date_to": "2026-01-01"}})
    fields = (await resp.json())["error"]["details"]["fields"]
    assert resp.status == 400 and fields["eligibility.date_to"] == "截止日期必须晚于起始日期"
    assert fields["eligibility.date_from"] == fields["eligibility.date_to"] and "winners" in fields

    resp = await client.post(f"/api/v1/admin/contests/{cid}/lotteries", headers=h, json={
        "name": "幸运奖", "winners": 2, "eligibility": {"min_score": 0, "exclude_flagged": True}})
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    lid, commitment = created["lottery_id"], created["commitment"]
    assert len(commitment) == 64 and "seed" not in created["lottery"]
    public = await (await client.get(f"/api/v1/contests/{cid}/lotteries/{lid}")).json()
    assert public["status"] == "committed" and public["commitment"] == commitment and "seed" not in public

    drawn = await (await client.post(f"/api/v1/admin/contests/{cid}/lotteries/{lid}/draw", headers=h)).json()
    assert hashlib.sha256(drawn["seed"].encode()).hexdigest() == commitment
    assert drawn["eligible_count"] == 5 and len(drawn["winners"]) == 2
    assert all(w["name"].endswith("号") for w in drawn["winners"])  # the admin sees full names
    resp = await client.post(f"/api/v1/admin/contests/{cid}/lotteries/{lid}/draw", headers=h)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_drawn"
    public = await (await client.get(f"/api/v1/contests/{cid}/lotteries/{lid}")).json()
    assert public["seed"] == drawn["seed"] and [w["user_id"] for w in public["winners"]] == [
        w["user_id"] for w in drawn["winners"]]
    assert all(w["name"].endswith("*") for w in public["winners"])
    assert (await client.get(f"/api/v1/contests/{cid}/lotteries/nope")).status == 404

    # verify from the export (csv and xlsx) and the published document
    for fmt in ("csv", "xlsx"):
        resp = await client.get(f"/api/v1/admin/contests/{cid}/export?what=results&exclude_flagged=1&format={fmt}",
                                headers=h)
        (tmp_path / f"results.{fmt}").write_bytes(await resp.read())
    (tmp_path / "published.json").write_bytes(orjson.dumps(public))
    for fmt in ("csv", "xlsx"):
        out = await asyncio.to_thread(_cli, "lottery", "verify", cid, lid, "--export", str(tmp_path / f"results.{fmt}"),
                                      "--published", str(tmp_path / "published.json"))
        assert out.returncode == 0 and out.stdout.startswith("match"), out.stdout + out.stderr
    # straight from Redis, as an operator would run it
    out = await asyncio.to_thread(_cli, "--redis-url", app_settings.redis_url or "", "--database-url",
                                  app_settings.effective_database_url, "lottery", "verify", cid, lid, "--export",
                                  str(tmp_path / "results.csv"))
    assert out.returncode == 0 and out.stdout.startswith("match"), out.stdout + out.stderr

    # a tampered export: one member dropped
    rows = list(csv.reader(io.StringIO((tmp_path / "results.csv").read_text("utf-8-sig"))))
    loser = next(r for r in rows[1:] if r[1] not in {w["user_id"] for w in public["winners"]})
    with (tmp_path / "tampered.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([r for r in rows if r is not loser])
    out = await asyncio.to_thread(_cli, "lottery", "verify", cid, lid, "--export", str(tmp_path / "tampered.csv"),
                                  "--published", str(tmp_path / "published.json"))
    assert out.returncode == 1 and out.stdout.startswith("mismatch") and "eligible" in out.stdout, out.stdout
    # a tampered seed
    (tmp_path / "bad-seed.json").write_bytes(orjson.dumps({**public, "seed": "00" + public["seed"][2:]}))
    out = await asyncio.to_thread(_cli, "lottery", "verify", cid, lid, "--export", str(tmp_path / "results.csv"),
                                  "--published", str(tmp_path / "bad-seed.json"))
    assert out.returncode == 1 and "commitment" in out.stdout, out.stdout
