"""The hot path over HTTP: attempts, answers, finish, limits, ranking order, boards, rollups."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import CATALOG, PLAY, REDIS, SETTINGS
from contest.auth import Claims
from leaderboard import keys
from question_bank import shown_answer
from tests.fixtures.app import Seeded, seed_contest
from tests.fixtures.play import register, seed_custom

VILLAGE_A = "360302002001"  # 荷塘村, 420 members
VILLAGE_B = "360302002002"  # 金竹村, 80 members
TOWN = "360302002"


async def start(client: TestClient, seeded: Seeded, user: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts", headers=user["headers"])
    return resp.status, await resp.json()


async def answer(client: TestClient, user: dict[str, Any], aid: str, index: int, choice: Any) -> tuple[int, Any]:
    resp = await client.post(f"/api/v1/attempts/{aid}/answers", json={"index": index, "choice": choice},
                             headers=user["headers"])
    return resp.status, await resp.json()


async def key_of(client: TestClient, aid: str) -> list[str]:
    """The shown correct keys of each question, read from the server's state (tests only)."""
    redis: aioredis.Redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
    cid = aid.split(".")[0]
    state = await redis.hgetall(keys.attempt(cid, aid))
    await redis.aclose()
    qc = int(state[b"qc"])
    return [state[f"q{i}".encode()].decode().split("|")[1] for i in range(qc)]


async def play(client: TestClient, user: dict[str, Any], seeded: Seeded, right: int) -> dict[str, Any]:
    """Answer the first ``right`` questions correctly and the rest wrongly, then finish."""
    status, attempt = await start(client, seeded, user)
    assert status == 201, attempt
    aid = attempt["attempt_id"]
    correct = await key_of(client, aid)
    for q, key in zip(attempt["questions"], correct, strict=True):
        options = [o["key"] for o in q["options"]]
        if q["index"] < right:
            choice: Any = list(key) if q["type"] == "multiple" else key
        else:
            wrong = next((k for k in options if k not in key), None)
            if wrong is None:  # a multiple question whose every option is right: answer only part of it
                choice = [key[0]]
            else:
                choice = [wrong] if q["type"] == "multiple" else wrong
        status, _ = await answer(client, user, aid, q["index"], choice)
        assert status == 200
    resp = await client.post(f"/api/v1/attempts/{aid}/finish", headers=user["headers"])
    assert resp.status == 200
    return await resp.json()


async def test_attempt_payload_never_contains_answers(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    status, attempt = await start(client, seeded, user)
    assert status == 201
    text = orjson.dumps(attempt).decode()
    for banned in ('"answer"', "explanation", "correct"):
        assert banned not in text
    for q in attempt["questions"]:
        assert set(q) == {"index", "type", "stem", "options", "points"}
    # The same unfinished attempt comes back with 200.
    status, again = await start(client, seeded, user)
    assert status == 200 and again["attempt_id"] == attempt["attempt_id"]
    assert [q["stem"] for q in again["questions"]] == [q["stem"] for q in attempt["questions"]]


async def test_answer_errors_and_idempotency(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user, other = await seeded.register(), await seeded.register()
    _, attempt = await start(client, seeded, user)
    aid = attempt["attempt_id"]
    q0 = attempt["questions"][0]
    first = q0["options"][0]["key"]
    choice: Any = [first] if q0["type"] == "multiple" else first
    status, body = await answer(client, user, aid, 0, choice)
    assert status == 200 and set(body) >= {"index", "correct", "points_awarded", "score", "correct_choice"}
    status, again = await answer(client, user, aid, 0, choice)
    assert status == 200 and again == body
    second = q0["options"][1]["key"]
    status, err = await answer(client, user, aid, 0, [second] if q0["type"] == "multiple" else second)
    assert status == 409 and err["error"]["code"] == "already_answered"
    status, err = await answer(client, other, aid, 1, "A")
    assert status == 404 and err["error"]["code"] == "not_found"
    status, err = await answer(client, user, aid, 99, "A")
    assert status == 400 and "index" in err["error"]["details"]["fields"]
    status, err = await answer(client, user, aid, 1, "Z")
    assert status == 400 and err["error"]["code"] == "validation_failed"
    status, err = await answer(client, user, aid, True, "A")
    assert status == 400 and "index" in err["error"]["details"]["fields"]
    status, err = await answer(client, user, "nope", 0, "A")
    assert status == 404
    resp = await client.post(f"/api/v1/attempts/{aid}/answers", data=b"{not json", headers=user["headers"])
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"


async def test_deadline_passed_and_auto_finish_exactly_once(client: TestClient) -> None:
    seeded = await seed_contest(client, time_limit_s=1)
    user = await seeded.register()
    _, attempt = await start(client, seeded, user)
    aid = attempt["attempt_id"]
    status, _ = await answer(client, user, aid, 0, attempt["questions"][0]["options"][0]["key"]
                             if attempt["questions"][0]["type"] != "multiple" else ["A"])
    assert status == 200
    await asyncio.sleep(1.2)
    status, err = await answer(client, user, aid, 1, "A")
    assert status == 410 and err["error"]["code"] == "deadline_passed"
    # The sweeper (every 100 ms in tests) finishes it; racing sweeps finish it once.
    app = client.server.app
    play = app[PLAY]
    contest = app[CATALOG].contests[seeded.contest_id]
    results = await asyncio.gather(*(play.auto_finish(contest, aid, 0) for _ in range(10)))
    assert sum(results) <= 1
    await asyncio.sleep(0.3)
    resp = await client.get(f"/api/v1/attempts/{aid}", headers=user["headers"])
    state = await resp.json()
    assert state["finished"] is True and len(state["answered"]) == 1
    resp = await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats",
                            headers={"Authorization": "Bearer test-admin-token"})
    assert (await resp.json())["attempts_finished"] == 1


async def test_attempt_limits_are_atomic(client: TestClient) -> None:
    seeded = await seed_contest(client, attempts_per_day=2, attempts_total=3)
    user = await seeded.register()
    # An unfinished attempt is resumed, so finish each one before the next start.
    ids = set()
    for _ in range(2):
        status, attempt = await start(client, seeded, user)
        assert status == 201
        ids.add(attempt["attempt_id"])
        await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/finish", headers=user["headers"])
    status, err = await start(client, seeded, user)
    assert status == 409 and err["error"]["code"] == "attempt_limit_reached"
    # Two phones of another user starting at once get one attempt between them.
    other = await seeded.register()
    replies = await asyncio.gather(*(start(client, seeded, other) for _ in range(8)))
    created = {body["attempt_id"] for status, body in replies if status == 201}
    resumed = {body["attempt_id"] for status, body in replies if status == 200}
    assert len(created) == 1 and resumed <= created


async def test_ranking_order_ties_and_best(client: TestClient) -> None:
    seeded = await seed_contest(client, attempts_per_day=0)
    a, b, c = [await seeded.register(name=n) for n in ("赵一", "钱二", "孙三")]
    ra = await play(client, a, seeded, right=8)
    rb = await play(client, b, seeded, right=5)
    rc = await play(client, c, seeded, right=2)
    assert ra["rank"] == 1 and rb["rank"] == 2 and rc["rank"] == 3
    # best ranking: a worse second attempt does not lower the board score
    again = await play(client, a, seeded, right=0)
    assert again["best_score"] == ra["score"] and again["rank"] == 1
    resp = await client.get(f"/api/v1/contests/{seeded.contest_id}/leaderboard?limit=2")
    board = await resp.json()
    assert board["total"] == 3 and [e["user_id"] for e in board["entries"]] == [a["user_id"], b["user_id"]]
    assert board["entries"][0]["name"] == "赵*"
    resp = await client.get(f"/api/v1/contests/{seeded.contest_id}/leaderboard/me?around=1", headers=c["headers"])
    me = await resp.json()
    assert me["rank"] == 3 and me["total"] == 3 and me["percentile"] == 0.0
    assert [e["rank"] for e in me["around"]] == [2, 3]


async def test_equal_score_and_duration_share_a_rank(client: TestClient) -> None:
    seeded = await seed_contest(client)
    cid = seeded.contest_id
    redis: aioredis.Redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
    from leaderboard.encoding import encode

    await redis.zadd(keys.board(cid), {"u1": encode(50, 1000), "u2": encode(50, 1000), "u3": encode(50, 900),
                                       "u4": encode(40, 10)})
    await redis.aclose()
    resp = await client.get(f"/api/v1/contests/{cid}/leaderboard")
    entries = (await resp.json())["entries"]
    assert [(e["user_id"], e["rank"]) for e in entries][0] == ("u3", 1)
    assert sorted(e["rank"] for e in entries) == [1, 2, 2, 4]
    resp = await client.get(f"/api/v1/contests/{cid}/leaderboard?offset=2&limit=1")
    assert (await resp.json())["entries"][0]["rank"] == 2  # a tie across the page boundary keeps its rank


async def test_sum_ranking_daily_and_org_boards(client: TestClient) -> None:
    seeded = await seed_contest(client, ranking="sum", attempts_per_day=0)
    a = await seeded.register(org_id=VILLAGE_A)
    b = await seeded.register(org_id=VILLAGE_B)
    first = await play(client, a, seeded, right=3)
    second = await play(client, a, seeded, right=2)
    rb = await play(client, b, seeded, right=4)
    assert second["best_score"] == first["score"] + second["score"]
    cid = seeded.contest_id
    resp = await client.get(f"/api/v1/contests/{cid}/leaderboard?board=daily")
    daily = await resp.json()
    assert daily["board"] == "daily" and daily["total"] == 2
    resp = await client.get(f"/api/v1/contests/{cid}/leaderboard?org_id={VILLAGE_B}")
    org_board = await resp.json()
    assert [e["user_id"] for e in org_board["entries"]] == [b["user_id"]]
    resp = await client.get(f"/api/v1/contests/{cid}/leaderboard?org_id={TOWN}")
    assert (await resp.json())["total"] == 2
    # Org rollups against hand-computed numbers.
    resp = await client.get(f"/api/v1/contests/{cid}/orgs?parent_id={TOWN}&sort=participation_rate")
    rows = {r["org_id"]: r for r in (await resp.json())["entries"]}
    assert rows[VILLAGE_A]["participants"] == 1 and rows[VILLAGE_A]["attempts"] == 2
    assert rows[VILLAGE_A]["total_score"] == first["score"] + second["score"]
    assert rows[VILLAGE_A]["participation_rate"] == round(1 / 420, 6)
    assert rows[VILLAGE_B]["participation_rate"] == round(1 / 80, 6)
    assert rows[VILLAGE_B]["avg_score"] == rb["score"]
    resp = await client.get(f"/api/v1/contests/{cid}/orgs?level=5&sort=participants&limit=3")
    level = await resp.json()
    assert level["total"] == 30 and {e["org_id"] for e in level["entries"][:2]} == {VILLAGE_A, VILLAGE_B}
    assert level["entries"][2]["participants"] == 0


async def test_submit_whole_paper_and_feedback_end(client: TestClient) -> None:
    seeded = await seed_contest(client, feedback="end")
    user = await seeded.register()
    _, attempt = await start(client, seeded, user)
    aid = attempt["attempt_id"]
    correct = await key_of(client, aid)
    status, body = await answer(client, user, aid, 0, list(correct[0]) if attempt["questions"][0]["type"] == "multiple"
                                else correct[0])
    assert status == 200 and body["correct"] is None and "correct_choice" not in body
    answers = [{"index": q["index"], "choice": list(k) if q["type"] == "multiple" else k}
               for q, k in zip(attempt["questions"], correct, strict=True)]
    resp = await client.post(f"/api/v1/attempts/{aid}/submit", json={"answers": answers}, headers=user["headers"])
    result = await resp.json()
    assert resp.status == 200, result
    assert result["correct_count"] == len(answers) and all(r["correct"] for r in result["results"])
    assert result["rank"] == 1


async def test_shown_key_matches_bank(client: TestClient) -> None:
    """The shuffled key stored for an attempt is the bank's answer seen through the permutation."""
    seeded = await seed_contest(client)
    user = await seeded.register()
    _, attempt = await start(client, seeded, user)
    catalog = client.server.app[CATALOG]
    stored = await key_of(client, attempt["attempt_id"])
    redis: aioredis.Redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
    raw = await redis.hget(keys.attempt(seeded.contest_id, attempt["attempt_id"]), "paper")
    await redis.aclose()
    for (qid, perm), key in zip(orjson.loads(raw), stored, strict=True):
        assert shown_answer(catalog.bank[qid], tuple(int(c) for c in perm)) == key


async def test_a_burst_of_cold_starts_marks_the_drawn_questions_over_one_connection(client: TestClient) -> None:
    """8 pm on a cold process: 300 starts at once, none of whose questions the process has marked
    drawn yet. Each used to SADD on its own pooled connection and the 101st concurrent one failed
    (redis-py's pool stops at 100); they now share one SADD at a time, and all start."""
    cid = await seed_custom(client)
    players = [await register(client) for _ in range(300)]
    play = client.server.app[PLAY]
    play.drawn.clear()  # as a process that has not started anyone yet
    claims = [Claims(p.user_id, "participant", p.org_id, p.name, 2**31) for p in players]
    results = await asyncio.gather(*(play.start(c, cid) for c in claims), return_exceptions=True)
    assert [r for r in results if not isinstance(r, tuple)] == []
    assert {status for status, _ in results} == {201}  # type: ignore[misc]
    drawn = {m.decode() for m in await client.server.app[REDIS].smembers(keys.bank_drawn())}
    assert play.drawn and play.drawn <= drawn  # what the process believes marked, is
    assert play.unmarked == set() and play.marking is not None and play.marking.done()
