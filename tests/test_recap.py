"""错题回顾 (issue 15 item 2): a finished attempt's answers with explanations, wrong ones first;
feedback and review_after_end decide when; nothing of an unfinished attempt is shown."""

from __future__ import annotations

import time

import orjson
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import SETTINGS
from leaderboard import keys
from tests.fixtures.app import admin_headers
from tests.fixtures.play import answer, choice_for, finish, register, seed_custom, start
from tests.fixtures.waiting import until


async def test_review_of_a_finished_paper_wrong_answers_first(client: TestClient) -> None:
    cid = await seed_custom(client, feedback="end")
    p, other = await register(client), await register(client)
    status, attempt = await start(client, p, cid)
    aid = attempt["attempt_id"]
    for q in attempt["questions"][:4]:  # 0, 1 right; 2, 3 wrong; 4, 5 unanswered
        await answer(client, p, aid, q["index"], choice_for(q, q["index"] < 2))
    resp = await client.get(f"/api/v1/attempts/{aid}/review", headers=p.headers)
    body = await resp.json()
    assert resp.status == 409 and body["error"]["code"] == "attempt_not_finished"
    assert "SECRET" not in orjson.dumps(body).decode()
    await finish(client, p, aid)
    resp = await client.get(f"/api/v1/attempts/{aid}/review", headers=other.headers)
    assert resp.status == 404
    resp = await client.get(f"/api/v1/attempts/{aid}/review", headers=p.headers)
    review = await resp.json()
    assert resp.status == 200, review
    assert [i["index"] for i in review["items"]] == [2, 3, 4, 5, 0, 1]
    assert review["wrong_count"] == 4 and review["score"] == 20 and review["question_count"] == 6
    first = review["items"][0]
    assert first["choice"] == "A" and first["correct_choice"] == "B" and first["correct"] is False
    assert first["explanation"].startswith("解析 TS") and first["stem"].startswith("题目")
    assert review["items"][2]["choice"] is None
    assert review["items"][-1]["correct"] is True and review["items"][-1]["points_awarded"] == 10

    # the attempt's Redis hash gone (a day after its deadline): the same review from the database
    settings = client.server.app[SETTINGS]  # type: ignore[union-attr]
    redis = aioredis.Redis.from_url(settings.redis_url)
    db = settings.database_url.removeprefix("sqlite:///")

    def flushed() -> bool:
        import sqlite3
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT finished_at FROM attempts WHERE attempt_id = ?", (aid,)).fetchone()
            n = conn.execute("SELECT COUNT(*) FROM answers WHERE attempt_id = ?", (aid,)).fetchone()[0]
        return bool(row and row[0] and n == 4)

    await until(flushed, what="the attempt in the database")
    await redis.delete(keys.attempt(cid, aid))
    await redis.aclose()
    resp = await client.get(f"/api/v1/attempts/{aid}/review", headers=p.headers)
    assert resp.status == 200 and (await resp.json())["items"] == review["items"]


async def test_feedback_none_closes_review_until_the_end(client: TestClient) -> None:
    cid = await seed_custom(client, feedback="none")
    closed = await seed_custom(client, feedback="none", review_after_end=False)
    p = await register(client)
    for contest in (cid, closed):
        status, attempt = await start(client, p, contest)
        await finish(client, p, attempt["attempt_id"])
        resp = await client.get(f"/api/v1/attempts/{attempt['attempt_id']}/review", headers=p.headers)
        err = await resp.json()
        assert resp.status == 403 and err["error"]["code"] == "review_closed"
        assert err["error"]["message"][0] >= "\u4e00"  # Chinese first
        assert (err["error"]["details"]["opens_at"] is None) == (contest == closed)
        # the contest ends: review opens unless the contest says never
        now = int(time.time() * 1000)
        resp = await client.patch(f"/api/v1/admin/contests/{contest}", headers=admin_headers(),
                                  json={"ends_at": now + 300})
        assert resp.status == 200, await resp.text()
        await until(lambda end=now + 400: time.time() * 1000 > end, what="the contest's end")

        async def opened(aid: str = attempt["attempt_id"]) -> bool:
            return (await client.get(f"/api/v1/attempts/{aid}/review", headers=p.headers)).status == 200

        if contest == cid:
            await until(opened, what="review open after the end")
        else:
            assert not await opened()


async def test_challenge_review_shows_only_what_was_served(client: TestClient) -> None:
    cid = await seed_custom(client, mode="challenge", feedback="immediate")
    p = await register(client)
    status, attempt = await start(client, p, cid)
    aid = attempt["attempt_id"]
    status, body = await answer(client, p, aid, 0, "B")
    status, body = await answer(client, p, aid, 1, "C")
    assert body["finished"]
    review = await (await client.get(f"/api/v1/attempts/{aid}/review", headers=p.headers)).json()
    assert [(i["index"], i["correct"]) for i in review["items"]] == [(1, False), (0, True)]
    assert review["mode"] == "challenge" and review["question_count"] == 2
