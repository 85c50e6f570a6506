"""``quiz rehearse --quick``: the campaign rehearsal end to end, with its equality checks.

The run registers 10,000 participants over a generated province, plays 10,000 attempts through
the real scripts from two processes while a live sample plays through ``quiz serve``, flushes into
PostgreSQL, loses Redis, rebuilds and exports.  It fails (exit 1) when the database holds other
rows than were acknowledged or when any board, rank or org rollup differs after the rebuild;
the second test shows that comparison catches a single altered score.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.fixtures.postgres import PgServer, create_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "loadtest"))

from rehearse import CONTEST, compare_states, contest_state  # noqa: E402

from leaderboard import keys  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.timeout(420)
async def test_rehearse_quick_keeps_every_board_and_every_answer(pg_server: PgServer, tmp_path: Path) -> None:
    out_json = tmp_path / "rehearse.json"
    pg_url = await create_database(pg_server)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contest.cli", "rehearse", "--quick", "--pg-url", pg_url, "--json", str(out_json),
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 400)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    assert out_json.exists(), text[-4000:]
    report = json.loads(out_json.read_text())
    checks = report["checks"]
    for name in ("database answers == acknowledged answers", "database attempts == started attempts",
                 "database users == registrants", "backlog zero",
                 "Redis state after rebuild == before (every board, rank, org rollup)",
                 "API reads after rebuild == before", "answers CSV rows == database rows"):
        assert checks.get(name) is True, (name, checks, text[-4000:])
    assert proc.returncode == 0 and report["ok"], text[-4000:]
    figures = report["figures"]
    assert figures["bulk"]["finished"] == 10_000 and figures["bulk"]["errors"] == 0, figures["bulk"]
    assert figures["database"]["answers"] == figures["database"]["acknowledged_answers"] >= 100_000
    # the comparison covered the boards, the org rollups and the members' records, in full
    kinds = figures["state_kinds"]
    assert kinds.get("lb:t:o", 0) > 1_000 and kinds.get("lb:d:o", 0) > 1_000 and kinds.get("u", 0) > 5_000, kinds
    assert figures["state_compare"]["keys"] == sum(kinds.values())
    assert figures["http"]["answer"]["n"] > 0 and not figures["http"]["errors"], figures["http"]
    assert "| measure | value | how |" in text


async def test_state_comparison_catches_one_altered_score(redis_client: aioredis.Redis) -> None:
    total = keys.board(CONTEST)
    daily = keys.board(CONTEST, "2026-12-03", "510101001001")
    # 6,000 members: read in chunks; the daily board and smaller keys are read whole
    await redis_client.zadd(total, {f"u{i}": i * 2**32 + 4_000_000_000 - i for i in range(6_000)})
    await redis_client.zadd(daily, {f"u{i}": i for i in range(0, 5_000, 7)})
    await redis_client.hset(keys.names(CONTEST), mapping={f"u{i}": f"n{i}\t510101001001" for i in range(5_000)})
    await redis_client.xadd(keys.events(CONTEST), {"t": "ans"})  # streams are not compared
    before = await contest_state(redis_client)
    assert compare_states(before, await contest_state(redis_client))["equal"]

    await redis_client.xadd(keys.events(CONTEST), {"t": "ans"})
    assert compare_states(before, await contest_state(redis_client))["equal"]

    await redis_client.zincrby(total, 1, "u4321")  # one score, deep in a 6,000-member board
    moved = compare_states(before, await contest_state(redis_client))
    assert not moved["equal"] and moved["differ"] == 1 and moved["examples"] == [total], moved
    await redis_client.zincrby(total, -1, "u4321")

    await redis_client.zrem(daily, "u14")
    await redis_client.hset(keys.names(CONTEST), "u3", "n3\t510101001002")
    changed = compare_states(before, await contest_state(redis_client))
    assert changed["differ"] == 2 and set(changed["examples"]) == {daily, keys.names(CONTEST)}, changed

    await redis_client.delete(daily)
    gone = compare_states(before, await contest_state(redis_client))
    assert gone["missing"] == 1 and not gone["equal"], gone
