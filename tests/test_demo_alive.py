"""``quiz demo --simulate N`` stays alive (issue 16 item 9): when a simulated member has used up
their attempts, a new member joins in the slot, so N players keep the numbers moving."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from contest.cli.demo import simulate_players
from tests.fixtures.app import TICKET_SECRET, admin_headers, seed_contest
from tests.fixtures.waiting import until


async def test_players_who_run_out_of_attempts_are_replaced(client: TestClient,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUIZ_DEMO_PACE", "200")  # a player's pauses 200 times shorter
    seeded = await seed_contest(client, attempts_per_day=1, attempts_total=1)
    base = str(client.make_url("")).rstrip("/")
    stop = asyncio.Event()
    task = asyncio.create_task(simulate_players(base, seeded.contest_id, ["360302002001", "360302002002"], 2, stop,
                                                TICKET_SECRET))

    async def participants() -> int:
        resp = await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats", headers=admin_headers())
        return (await resp.json())["participants"] >= 6

    try:
        # two slots, one attempt each per member: six participants means four members joined later
        await until(participants, within=20, interval=0.1, what="new simulated members joining")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
