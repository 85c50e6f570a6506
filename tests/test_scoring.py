"""Scoring against hand-computed numbers: partial credit, time bonus, streak bonus, feedback modes,
counted_per_day, and attempt payloads that never carry answer data."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from tests.fixtures.app import admin_headers
from tests.fixtures.play import (
    BANK,
    answer,
    choice_for,
    create_contest,
    finish,
    register,
    seed_custom,
    start,
    submit_scored,
)

MULTI = {"draw": [{"category": "T多", "difficulty": None, "count": 3}], "shuffle_questions": False,
         "shuffle_options": False}


async def test_multiple_all_or_nothing_and_partial_credit(client: TestClient) -> None:
    strict = await seed_custom(client, paper=MULTI)
    partial = await create_contest(client, paper=MULTI, scoring={"partial_credit": True})
    # key AC, 10 points: "A" is half right, "AB" has a wrong key, "AC" is exact, "ACD" over-answers
    choices = [["A"], ["A", "B"], ["C", "A"]]
    expected = {strict: [0, 0, 10], partial: [5, 0, 10]}
    for cid, points in expected.items():
        player = await register(client)
        status, attempt = await start(client, player, cid)
        assert status == 201 and [q["type"] for q in attempt["questions"]] == ["multiple"] * 3
        aid = attempt["attempt_id"]
        running = 0
        for q, choice, pts in zip(attempt["questions"], choices, points, strict=True):
            status, body = await answer(client, player, aid, q["index"], choice)
            running += pts
            assert status == 200, body
            assert body["points_awarded"] == pts and body["score"] == running
            assert body["correct"] is (pts == 10) and body["correct_choice"] == ["A", "C"]
        status, result = await finish(client, player, aid)
        assert status == 200 and result["score"] == sum(points) and result["correct_count"] == 1
    # partial credit never rewards a wrong key, and over-answering is wrong too
    player = await register(client)
    _, attempt = await start(client, player, partial)
    status, body = await answer(client, player, attempt["attempt_id"], 0, ["A", "C", "D"])
    assert status == 200 and body["points_awarded"] == 0 and body["correct"] is False


async def test_time_bonus_matches_the_formula(client: TestClient) -> None:
    cid = await seed_custom(client, scoring={"time_bonus": {"max_points": 100, "over_s": 60}})
    player = await register(client)
    _, attempt = await start(client, player, cid)
    aid = attempt["attempt_id"]
    awarded = []
    for q in attempt["questions"]:
        right = q["index"] != 2  # one wrong answer: no bonus for it
        status, body = await answer(client, player, aid, q["index"], choice_for(q, right))
        assert status == 200
        awarded.append(body["points_awarded"])
    resp = await client.get(f"/api/v1/attempts/{aid}", headers=player.headers)
    state = await resp.json()
    previous = state["started_at"]
    expected = []
    for item in sorted(state["answered"], key=lambda a: a["index"]):
        elapsed = item["answered_at"] - previous  # the question's clock starts at the previous answer
        previous = item["answered_at"]
        expected.append(0 if item["index"] == 2 else 10 + (100 * (60_000 - elapsed)) // 60_000)
    assert awarded == expected and all(p > 100 for i, p in enumerate(awarded) if i != 2)
    status, result = await finish(client, player, aid)
    assert result["score"] == sum(expected)


async def test_time_bonus_ends_with_its_window(client: TestClient) -> None:
    cid = await seed_custom(client, scoring={"time_bonus": {"max_points": 50, "over_s": 1}})
    player = await register(client)
    _, attempt = await start(client, player, cid)
    aid = attempt["attempt_id"]
    # until the bonus window (1 s from the start, by the server's clock, which is this host's) is over
    for _ in range(100):  # a timer may fire a hair early: look at the clock again
        if (left_ms := attempt["started_at"] + 1_001 - time.time() * 1000) <= 0:
            break
        await asyncio.sleep(left_ms / 1000)
    status, slow = await answer(client, player, aid, 0, "B")
    assert status == 200 and slow["points_awarded"] == 10  # past the 1 s window: the bare points
    status, fast = await answer(client, player, aid, 1, "B")
    assert status == 200 and 10 + 25 <= fast["points_awarded"] <= 10 + 50  # answered within 0.5 s


async def test_streak_bonus_with_cap(client: TestClient) -> None:
    cid = await seed_custom(client, scoring={"streak_bonus": {"step": 5, "cap": 12}})
    player = await register(client)
    _, attempt = await start(client, player, cid)
    pattern = [True, True, True, True, False, True]
    # streak 1: +0, 2: +5, 3: +10, 4: +15 capped at 12; a wrong answer resets the streak
    expected = [10, 15, 20, 22, 0, 10]
    got = []
    for q, right in zip(attempt["questions"], pattern, strict=True):
        status, body = await answer(client, player, attempt["attempt_id"], q["index"], choice_for(q, right))
        assert status == 200
        got.append(body["points_awarded"])
    assert got == expected
    status, result = await finish(client, player, attempt["attempt_id"])
    assert result["score"] == 77 and result["correct_count"] == 5


async def test_bonuses_are_off_by_default(client: TestClient) -> None:
    cid = await seed_custom(client)
    result = await submit_scored(client, await register(client), cid, right=6)
    assert result["score"] == 60 and [r["points_awarded"] for r in result["results"]] == [10] * 6


async def _attempt(client: TestClient, player: Any, aid: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/attempts/{aid}", headers=player.headers)
    assert resp.status == 200
    return await resp.json()


async def test_feedback_immediate_end_none(client: TestClient) -> None:
    first = await seed_custom(client)
    cids = {"immediate": first, "end": await create_contest(client, feedback="end"),
            "none": await create_contest(client, feedback="none")}
    for mode, cid in cids.items():
        player = await register(client)
        _, attempt = await start(client, player, cid)
        aid = attempt["attempt_id"]
        status, right = await answer(client, player, aid, 0, "B")
        status2, wrong = await answer(client, player, aid, 1, "A")
        assert status == status2 == 200
        during = await _attempt(client, player, aid)
        if mode == "immediate":
            assert right == {"index": 0, "correct": True, "points_awarded": 10, "score": 10, "correct_choice": "B",
                             "accepted": True}
            assert wrong["correct"] is False and wrong["points_awarded"] == 0 and wrong["correct_choice"] == "B"
            assert [a["correct"] for a in during["answered"]] == [True, False] and during["score"] == 10
        else:
            for body in (right, wrong):
                assert body["correct"] is None and body["points_awarded"] is None and body["score"] is None
                assert "correct_choice" not in body
            assert all("correct" not in a and "points_awarded" not in a for a in during["answered"])
            assert during["score"] is None
        status, result = await finish(client, player, aid)
        assert status == 200 and result["score"] == 10
        after = await _attempt(client, player, aid)
        assert after["finished"] is True and after["score"] == 10
        if mode == "none":
            assert all("correct" not in a for a in after["answered"]) and after["correct_count"] is None
        else:
            assert [a["correct"] for a in after["answered"]] == [True, False] and after["correct_count"] == 1


def _assert_no_answer_data(payload: dict[str, Any]) -> None:
    text = orjson.dumps(payload).decode()
    for banned in ('"answer"', "explanation", "SECRET", "correct_choice", '"key_"'):
        assert banned not in text, banned
    answered = {a["index"] for a in payload.get("answered", [])}
    for q in payload["questions"]:
        assert set(q) == {"index", "type", "stem", "options", "points"}, q
        assert all(set(o) == {"key", "text"} for o in q["options"])
    for item in payload.get("answered", []):
        assert item["index"] in answered and "correct_choice" not in item


async def test_no_attempt_payload_contains_answer_data(client: TestClient) -> None:
    paper = {"draw": [{"category": "T单", "difficulty": None, "count": 2},
                      {"category": "T多", "difficulty": None, "count": 2},
                      {"category": "T判", "difficulty": None, "count": 2}],
             "shuffle_questions": True, "shuffle_options": True}
    first = await seed_custom(client, paper=paper)
    for cid in (first, await create_contest(client, paper=paper, feedback="end"),
                await create_contest(client, paper=paper, feedback="none")):
        player = await register(client)
        status, attempt = await start(client, player, cid)
        assert status == 201
        _assert_no_answer_data(attempt)
        assert {q["type"] for q in attempt["questions"]} == {"single", "multiple", "judge"}
        status, resumed = await start(client, player, cid)
        assert status == 200 and resumed["attempt_id"] == attempt["attempt_id"]
        _assert_no_answer_data(resumed)
        aid = attempt["attempt_id"]
        q0 = attempt["questions"][0]
        status, _ = await answer(client, player, aid, 0, q0["options"][0]["key"] if q0["type"] != "multiple"
                                 else [q0["options"][0]["key"]])
        assert status == 200
        _assert_no_answer_data(await _attempt(client, player, aid))
    # the bank's own texts never leak: every explanation is marked SECRET and none was seen
    assert all("SECRET" in q["explanation"] for q in BANK)


async def test_counted_per_day_keeps_later_attempts_off_the_boards(client: TestClient) -> None:
    best = await seed_custom(client, counted_per_day=1)
    summed = await create_contest(client, counted_per_day=2, ranking="sum")
    player = await register(client, org_id="360302002002")
    first = await submit_scored(client, player, best, right=2)
    second = await submit_scored(client, player, best, right=6)  # better, but over today's count
    assert first["counted"] is True and second["counted"] is False
    assert second["best_score"] == 20 and second["rank"] == 1
    for board in ("total", "daily"):
        resp = await client.get(f"/api/v1/contests/{best}/leaderboard", params={"board": board})
        assert [e["score"] for e in (await resp.json())["entries"]] == [20], board
    resp = await client.get(f"/api/v1/contests/{best}/orgs", params={"parent_id": "360302002"})
    row = next(r for r in (await resp.json())["entries"] if r["org_id"] == "360302002002")
    assert row["attempts"] == 1 and row["total_score"] == 20 and row["participants"] == 1
    # sum: the first two of the day add up, the third is played and stored but not added
    scores = [(await submit_scored(client, player, summed, right=r)) for r in (1, 2, 3)]
    assert [s["counted"] for s in scores] == [True, True, False]
    assert scores[-1]["best_score"] == 30
    resp = await client.get(f"/api/v1/contests/{summed}/leaderboard")
    entry = (await resp.json())["entries"][0]
    assert entry["score"] == 30 and entry["duration_ms"] == scores[0]["duration_ms"] + scores[1]["duration_ms"]
    resp = await client.get(f"/api/v1/admin/contests/{summed}/stats", headers=admin_headers())
    stats = await resp.json()
    assert stats["attempts_finished"] == 3 and stats["participants"] == 1
