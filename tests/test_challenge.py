"""Challenge mode (issue 15 item 1): one question at a time, to the first wrong answer, over HTTP.

Scores, boards and exports are checked against an independent recount from the durable store
(the SQLite file the flusher writes), and again after a rebuild of Redis from that store.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
from typing import Any

from aiohttp.test_utils import TestClient

from contest.appkeys import SETTINGS
from tests.fixtures.app import admin_headers
from tests.fixtures.play import answer, choice_for, finish, register, seed_custom, start
from tests.fixtures.waiting import until


async def run(client: TestClient, player: Any, cid: str, right: int) -> dict[str, Any]:
    """Answer ``right`` questions right, then one wrong (unless the run ends first); the last reply."""
    status, attempt = await start(client, player, cid)
    assert status == 201 and attempt["mode"] == "challenge" and len(attempt["questions"]) == 1, attempt
    aid, q = attempt["attempt_id"], attempt["questions"][0]
    n = 0
    while True:
        status, body = await answer(client, player, aid, q["index"], choice_for(q, n < right))
        assert status == 200, body
        n += 1
        if body["finished"]:
            assert body["next"] is None and body["result"]["attempt_id"] == aid
            return body
        q = body["next"]
        assert q["index"] == n and "answer" not in q


async def test_challenge_runs_to_the_first_wrong_answer_and_agrees_with_the_durable_store(client: TestClient
                                                                                            ) -> None:
    cid = await seed_custom(client, mode="challenge", max_questions=5, feedback="end",
                            paper={"draw": [{"category": "T单", "difficulty": None, "count": 8}],
                                   "shuffle_questions": True, "shuffle_options": False})
    detail = await (await client.get(f"/api/v1/contests/{cid}")).json()
    assert detail["mode"] == "challenge" and detail["max_questions"] == 5
    a, b, c = [await register(client, name=n) for n in ("赵一", "钱二", "孙三")]

    # the current question only: a later index is 409 not_current, nothing is recorded
    status, attempt = await start(client, a, cid)
    aid = attempt["attempt_id"]
    status, err = await answer(client, a, aid, 1, "B")
    assert status == 409 and err["error"]["code"] == "not_current"
    resp = await client.get(f"/api/v1/attempts/{aid}", headers=a.headers)
    view = await resp.json()
    assert len(view["questions"]) == 1 and view["current"] == 0 and view["answered"] == []
    status, body = await answer(client, a, aid, 0, "B")
    assert status == 200 and body["next"]["index"] == 1 and body["correct"] is None  # feedback: end
    for i in (1, 2):
        status, body = await answer(client, a, aid, i, "B")
    status, body = await answer(client, a, aid, 3, "A")  # the first wrong answer ends the run
    assert status == 200 and body["finished"] and body["next"] is None
    ra = body["result"]
    assert (ra["score"], ra["correct_count"], ra["question_count"], ra["rank"]) == (30, 3, 4, 1)
    status, again = await answer(client, a, aid, 3, "A")
    assert status == 200 and again == body  # idempotent, finish result included
    status, fin = await finish(client, a, aid)
    assert status == 200 and fin["score"] == 30 and fin["question_count"] == 4

    rb = (await run(client, b, cid, right=5))["result"]  # every question right: ends at max_questions
    assert (rb["score"], rb["question_count"], rb["rank"]) == (50, 5, 1)
    rc = (await run(client, c, cid, right=0))["result"]
    assert (rc["score"], rc["question_count"]) == (0, 1)

    board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
    expected = [(b.user_id, 50), (a.user_id, 30), (c.user_id, 0)]
    assert [(e["user_id"], e["score"]) for e in board["entries"]] == expected
    orgs = await (await client.get(f"/api/v1/contests/{cid}/orgs?level=5&sort=total_score")).json()
    assert orgs["entries"][0]["total_score"] == 80 and orgs["entries"][0]["participants"] == 3

    # the flusher's copy: an independent recount of every attempt from the answers table
    flusher_db = client.server.app[SETTINGS].database_url.removeprefix("sqlite:///")  # type: ignore[union-attr]

    def recount() -> dict[str, tuple[int, int, int]]:
        with sqlite3.connect(flusher_db) as db:
            rows = db.execute("SELECT a.user_id, SUM(x.points_awarded), COUNT(x.idx), MAX(t.question_count)"
                              " FROM answers x JOIN attempts t ON t.attempt_id = x.attempt_id"
                              " JOIN users a ON a.user_id = t.user_id WHERE t.contest_id = ?"
                              " AND t.finished_at IS NOT NULL GROUP BY t.attempt_id", (cid,)).fetchall()
        return {str(u): (s, n, q) for u, s, n, q in rows}

    durable = await until(lambda: (r := recount()) and len(r) == 3 and r, what="the flusher's copy")
    assert durable == {a.user_id: (30, 4, 4), b.user_id: (50, 5, 5), c.user_id: (0, 1, 1)}
    resp = await client.get(f"/api/v1/admin/contests/{cid}/export?what=results&format=csv", headers=admin_headers())
    rows = list(csv.DictReader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    assert {r["user_id"]: (int(r["score"]), int(r["question_count"])) for r in rows} == {
        u: (s, q) for u, (s, _, q) in durable.items()}

    # Redis lost: the rebuild from the durable store gives the same board
    resp = await client.post(f"/api/v1/admin/contests/{cid}/rebuild", headers=admin_headers())
    assert resp.status == 200, await resp.text()
    board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
    assert [(e["user_id"], e["score"]) for e in board["entries"]] == expected

    # an admin's review voids b's run: the board and the org rollup move at once
    resp = await client.post(f"/api/v1/admin/contests/{cid}/attempts/{rb['attempt_id']}/review",
                             headers=admin_headers(), json={"action": "void", "reason": "复核"})
    assert resp.status == 200 and (await resp.json())["changed"] is True
    board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
    assert [(e["user_id"], e["score"]) for e in board["entries"]] == expected[1:]
    orgs = await (await client.get(f"/api/v1/contests/{cid}/orgs?level=5&sort=total_score")).json()
    assert orgs["entries"][0]["total_score"] == 30


async def test_challenge_ends_at_the_question_time_limit(client: TestClient) -> None:
    cid = await seed_custom(client, mode="challenge", question_time_limit_s=1)
    p = await register(client)
    status, attempt = await start(client, p, cid)
    aid = attempt["attempt_id"]
    status, body = await answer(client, p, aid, 0, "B")
    assert status == 200 and body["next"]["index"] == 1
    await asyncio.sleep(1.1)
    status, err = await answer(client, p, aid, 1, "B")
    assert status == 410 and err["error"]["code"] == "deadline_passed"
    assert err["error"]["details"]["finished"] is True and err["error"]["details"]["result"]["score"] == 10
    status, again = await answer(client, p, aid, 1, "B")
    assert status == 410 and again == err
    view = await (await client.get(f"/api/v1/attempts/{aid}", headers=p.headers)).json()
    assert view["finished"] and view["score"] == 10 and len(view["questions"]) == 2


async def test_mode_is_validated_and_fixed_once_published(client: TestClient) -> None:
    cid = await seed_custom(client, mode="challenge")
    resp = await client.patch(f"/api/v1/admin/contests/{cid}", json={"mode": "paper"}, headers=admin_headers())
    assert resp.status == 400 and "mode" in (await resp.json())["error"]["details"]["fields"]
    resp = await client.post("/api/v1/admin/contests", headers=admin_headers(), json={
        "title": "x", "starts_at": 1_900_000_000_000, "ends_at": 1_900_000_100_000, "mode": "relay",
        "max_questions": 500, "paper": {"draw": [{"category": "T单", "count": 2}]}})
    fields = (await resp.json())["error"]["details"]["fields"]
    assert resp.status == 400 and {"mode", "max_questions"} <= set(fields)


async def test_challenge_daily_limits_counted_per_day_and_rollups(client: TestClient) -> None:
    cid = await seed_custom(client, mode="challenge", attempts_per_day=2, counted_per_day=1)
    p = await register(client)
    first = (await run(client, p, cid, right=2))["result"]
    second = (await run(client, p, cid, right=4))["result"]
    assert (first["score"], first["counted"], second["score"], second["counted"]) == (20, True, 40, False)
    board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
    assert [e["score"] for e in board["entries"]] == [20]  # only the day's counted run ranks
    status, err = await start(client, p, cid)
    assert status == 409 and err["error"]["code"] == "attempt_limit_reached"
    detail = await (await client.get(f"/api/v1/contests/{cid}", headers=p.headers)).json()
    assert (detail["attempts_left_today"], detail["best_score"]) == (0, 20)
    stats = await (await client.get(f"/api/v1/admin/contests/{cid}/stats", headers=admin_headers())).json()
    assert (stats["attempts_finished"], stats["answers"], stats["participants"]) == (2, 8, 1)


async def test_the_openapi_document_names_the_campaign_fields_and_routes(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/api/v1/attempts/{aid}/review", "/api/v1/attempts/{aid}/certificate.png",
                 "/api/v1/certificates/{serial}", "/verify/{serial}"):
        assert "get" in paths[path], path
    answer = paths["/api/v1/attempts/{aid}/answers"]["post"]["responses"]["200"]["content"]["application/json"]
    assert {"next", "finished", "result"} <= set(answer["schema"]["properties"])
    body = paths["/api/v1/admin/contests"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"mode", "max_questions", "review_after_end", "certificate"} <= set(body["properties"])
    detail = paths["/api/v1/contests/{cid}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"attempts_left_today", "attempts_left_total", "next_attempt_at", "best_score"} <= set(
        detail["properties"])
    verify = paths["/api/v1/certificates/{serial}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert {"valid", "contest", "masked_name", "score", "issued_at"} <= set(verify["schema"]["properties"])


async def test_a_sharded_challenge_ranks_across_shards(client: TestClient) -> None:
    cid = await seed_custom(client, mode="challenge", shards=3)
    players = [await register(client, name=f"选手{i}") for i in range(6)]
    results = [(await run(client, p, cid, right=i))["result"] for i, p in enumerate(players)]
    assert [r["score"] for r in results] == [0, 10, 20, 30, 40, 50]
    assert all(r["rank"] is None for r in results)  # the answer call ranks within its shard only
    for i, p in enumerate(players):  # the finish call (idempotent) ranks across the shards
        status, fin = await finish(client, p, results[i]["attempt_id"])
        assert status == 200 and fin["rank"] == 6 - i
    board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
    assert [e["score"] for e in board["entries"]] == [50, 40, 30, 20, 10, 0]


def test_the_paper_answer_script_carries_no_challenge_code() -> None:
    """Challenge answers have a script of their own, so a paper's answer runs no line of it."""
    from leaderboard.scripts import ANSWER, ANSWER_CHALLENGE, all_scripts

    assert "cur" not in ANSWER.source.split("\n-- Score one answer", 1)[1] and "finish_attempt" not in ANSWER.source
    assert "not_current" in ANSWER_CHALLENGE.source and ANSWER_CHALLENGE in all_scripts()
