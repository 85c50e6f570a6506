"""The answer lane (contest/web/answer_lane.py) against aiohttp serving the same requests.

Parity: the contract's answer cases give the same status and body through the lane and through
aiohttp (QUIZ_ANSWER_LANE=0).  Framing (contest/web/front_door.py): requests split anywhere,
pipelined, of every shape the lane leaves to aiohttp, on one connection, are all answered, in
order; the lane serves exactly the plain ones, and keeps serving them on a connection that also
carries other requests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import METRICS, SETTINGS
from contest.web.app import create_app
from leaderboard import keys
from tests.fixtures.app import LaneTestServer, Seeded, bearer, make_settings, seed_contest
from tests.fixtures.waiting import until

A = "/api/v1/attempts"


async def _client(redis_url: str, data_dir: Path, lane: bool, **overrides: Any) -> TestClient:
    flush = aioredis.Redis.from_url(redis_url)
    await flush.flushall()
    await flush.aclose()
    client = TestClient(LaneTestServer(create_app(make_settings(redis_url, data_dir, **overrides)), lane=lane,
                                       host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def lane_client(redis_url: str, data_dir: Path) -> AsyncIterator[TestClient]:
    client = await _client(redis_url, data_dir, True)
    yield client
    await client.close()


def _lane_count(client: TestClient) -> int:
    return client.server.app[METRICS].lane_requests  # type: ignore[union-attr]


async def _contract_cases(client: TestClient) -> list[tuple[int, Any]]:
    """Every answer outcome of API.md, in one played attempt; (status, body) of each."""
    seeded: Seeded = await seed_contest(client, feedback="immediate", shuffle_options=False)
    user = await seeded.register()
    other = await seeded.register()
    resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts", headers=user["headers"])
    attempt = await resp.json()
    aid = attempt["attempt_id"]
    organizer = seeded.organizer("360000", _settings(client))
    url = f"{A}/{aid}/answers"
    first = attempt["questions"][0]
    letter = first["options"][0]["key"]
    cases: list[tuple[str, dict[str, str], bytes]] = [
        (url, user["headers"], orjson.dumps({"index": 0, "choice": letter})),  # 200
        (url, user["headers"], orjson.dumps({"index": 0, "choice": letter})),  # 200 idempotent repeat
        (url, user["headers"], orjson.dumps({"index": 0, "choice": "H"})),  # 409 already answered / 400
        (url, user["headers"], orjson.dumps({"index": 99, "choice": "A"})),  # 400 no such question
        (url, user["headers"], orjson.dumps({"index": -1, "choice": "A"})),  # 400 index range
        (url, user["headers"], orjson.dumps({"index": "1", "choice": "A"})),  # 400 index type
        (url, user["headers"], orjson.dumps({"index": 1})),  # 400 choice missing
        (url, user["headers"], orjson.dumps({"index": 1, "choice": ["A", "A"]})),  # 400 repeated key
        (url, user["headers"], orjson.dumps({"index": 1, "choice": "Z"})),  # 400 not a key
        (url, {**user["headers"], "Accept-Language": "zh-CN,zh;q=0.9"},
         orjson.dumps({"index": 1, "choice": "Z"})),  # 400 in Chinese, as the pages ask
        (url, {"Accept-Language": "zh-CN"}, orjson.dumps({"index": 1, "choice": "A"})),  # 401 in Chinese
        (url, user["headers"], b'{"index": 1, "choice": '),  # 400 invalid_json
        (url, user["headers"], b"[1, 2]"),  # 400 not an object
        (url, user["headers"], b""),  # 400 empty
        (url, user["headers"], b"[" * 40 + b"]" * 40),  # 400 too deep
        (url, {}, orjson.dumps({"index": 1, "choice": "A"})),  # 401 no token
        (url, bearer("garbage.token"), orjson.dumps({"index": 1, "choice": "A"})),  # 401 bad token
        (url, {"Authorization": "Basic abc"}, orjson.dumps({"index": 1, "choice": "A"})),  # 401 scheme
        (url, organizer, orjson.dumps({"index": 1, "choice": "A"})),  # 403 role
        (url, other["headers"], orjson.dumps({"index": 1, "choice": "A"})),  # 404 not the owner
        (f"{A}/nosuch.attempt/answers", user["headers"], orjson.dumps({"index": 1, "choice": "A"})),  # 404
        (f"{A}/nodot/answers", user["headers"], orjson.dumps({"index": 1, "choice": "A"})),  # 404 malformed id
        (url, user["headers"], orjson.dumps({"index": 1, "choice": "A", "pad": "x" * 10_000})),  # 413
    ]
    out: list[tuple[int, Any]] = []
    for path, headers, body in cases:
        resp = await client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})
        out.append((resp.status, await resp.json()))
    resp = await client.post(f"{A}/{aid}/finish", headers=user["headers"])
    assert resp.status == 200
    resp = await client.post(url, data=orjson.dumps({"index": 2, "choice": "A"}), headers=user["headers"])
    out.append((resp.status, await resp.json()))  # 409 already finished
    return out + await _challenge_cases(client, user)


async def _challenge_cases(client: TestClient, user: dict[str, Any]) -> list[tuple[int, Any]]:
    """A challenge run (issue 15): not_current, a right answer with ``next``, its repeat, a wrong
    answer that finishes the attempt in the same call, its repeat, then an answer after the end."""
    seeded = await seed_contest(client, contest_id="lanech", feedback="immediate", shuffle_options=False,
                                mode="challenge", max_questions=5)
    resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts", headers=user["headers"])
    attempt = await resp.json()
    assert resp.status == 201 and attempt["mode"] == "challenge" and len(attempt["questions"]) == 1
    aid = attempt["attempt_id"]
    redis = aioredis.Redis.from_url(_settings(client).redis_url)
    shown = [(await redis.hget(keys.attempt(seeded.contest_id, aid), f"q{i}")).decode().split("|")
             for i in range(2)]
    await redis.aclose()

    def right(i: int) -> Any:
        return list(shown[i][1]) if shown[i][0] == "m" else shown[i][1]

    def wrong(i: int) -> Any:
        if shown[i][0] == "m":  # a multiple choice is wrong without one of its keys (it may use all four)
            return list(shown[i][1][:-1]) if len(shown[i][1]) > 1 else [next(k for k in "ABCD" if k != shown[i][1])]
        return next(k for k in "ABCD" if k not in shown[i][1])

    url = f"{A}/{aid}/answers"
    cases = [
        {"index": 1, "choice": right(1)},  # 409 not_current
        {"index": 0, "choice": right(0)},  # 200 with next
        {"index": 0, "choice": right(0)},  # 200 the same again
        {"index": 0, "choice": wrong(0)},  # 409 already_answered
        {"index": 1, "choice": wrong(1)},  # 200 finished: next null, the finish result
        {"index": 1, "choice": wrong(1)},  # 200 the same again
        {"index": 2, "choice": "A"},  # 409 already finished
    ]
    out: list[tuple[int, Any]] = []
    for body in cases:
        resp = await client.post(url, data=orjson.dumps(body), headers={**user["headers"],
                                                                        "Content-Type": "application/json"})
        out.append((resp.status, await resp.json()))
    assert [s for s, _ in out] == [409, 200, 200, 409, 200, 200, 409]
    assert out[0][1]["error"]["code"] == "not_current"
    assert out[1][1]["next"]["index"] == 1 and out[1][1] == out[2][1]
    assert "answer" not in orjson.dumps(out[1][1]["next"]).decode()
    assert out[4][1]["next"] is None and out[4][1]["finished"] is True and out[4][1] == out[5][1]
    assert out[4][1]["result"]["attempt_id"] == aid and out[4][1]["result"]["question_count"] == 2
    assert out[6][1]["error"]["code"] == "already_finished"
    return out


def _settings(client: TestClient) -> Any:
    return client.server.app[SETTINGS]  # type: ignore[union-attr]


def _normalised(case: tuple[int, Any]) -> tuple[int, Any]:
    status, body = case
    if status == 200:  # the score and key differ between two drawn papers; the shape must not
        return status, sorted(body)
    return status, body


async def test_lane_and_aiohttp_answer_every_contract_case_alike(redis_url: str, data_dir: Path) -> None:
    results = {}
    for lane in (True, False):
        client = await _client(redis_url, data_dir / str(lane), lane, max_body_bytes=4096)
        try:
            results[lane] = await _contract_cases(client)
            served = _lane_count(client)
        finally:
            await client.close()
        if lane:
            assert served >= len(results[lane]) - 1  # all but the 413 (a body over the limit goes to aiohttp)
        else:
            assert served == 0
    statuses = [s for s, _ in results[True]]
    assert statuses[:2] == [200, 200] and 401 in statuses and 403 in statuses and 413 in statuses
    assert statuses[-1] == 409 and results[True][-1][1]["error"]["code"] == "already_finished"
    # the challenge run (the last 7 cases) first, then everything
    challenge = {lane: [_normalised(c) for c in results[lane][-7:]] for lane in (True, False)}
    assert challenge[True] == challenge[False]
    assert [_normalised(c) for c in results[True]] == [_normalised(c) for c in results[False]]
    chinese = [b["error"]["message"] for s, b in results[True] if s >= 400 and re.search("[\u4e00-\u9fff]",
                                                                                      b["error"]["message"])]
    assert len(chinese) >= 2, "errors asked for in zh-CN came back in Chinese through the lane"


# ---- framing on a raw connection ---------------------------------------------------------------
async def _played(client: TestClient) -> tuple[str, str, dict[str, Any]]:
    seeded = await seed_contest(client, feedback="immediate", shuffle_options=False)
    user = await seeded.register()
    resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts", headers=user["headers"])
    attempt = await resp.json()
    return attempt["attempt_id"], user["token"], attempt


def _answer(aid: str, token: str, index: int, choice: str = "A", *, extra: str = "", target: str | None = None,
            version: str = "HTTP/1.1") -> bytes:
    body = orjson.dumps({"index": index, "choice": choice})
    path = target or f"{A}/{aid}/answers"
    return (f"POST {path} {version}\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


async def _read_responses(reader: asyncio.StreamReader, n: int) -> list[tuple[int, dict[str, str], Any]]:
    out = []
    for _ in range(n):
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.startswith(b"HTTP/1.1 "), status_line
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        out.append((int(status_line.split()[1]), headers, orjson.loads(body) if body else None))
    return out


async def _connect(client: TestClient) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", client.port)


async def test_split_and_pipelined_requests_are_answered_in_order(lane_client: TestClient) -> None:
    aid, token, _ = await _played(lane_client)
    reader, writer = await _connect(lane_client)
    before = _lane_count(lane_client)
    # one request delivered a few bytes at a time, with pauses in the head and in the body
    raw = _answer(aid, token, 0)
    for i in range(0, len(raw), 7):
        writer.write(raw[i:i + 7])
        await writer.drain()
        await asyncio.sleep(0.001)
    (status, headers, body), = await _read_responses(reader, 1)
    assert status == 200 and body["index"] == 0 and headers["content-type"] == "application/json"
    assert "date" in headers and "server" in headers
    # pipelined: answer, a GET aiohttp serves, answer, a bad answer, in one write
    get = f"GET {A}/{aid} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    writer.write(_answer(aid, token, 1) + get + _answer(aid, token, 2) + _answer(aid, token, 2, "B"))
    replies = await _read_responses(reader, 4)
    assert [r[0] for r in replies] == [200, 200, 200, 409]
    assert replies[0][2]["index"] == 1 and replies[2][2]["index"] == 2
    assert {a["index"] for a in replies[1][2]["answered"]} == {0, 1}  # the GET saw answer 1, not 2
    assert _lane_count(lane_client) - before == 4  # 3 answers + the 409; the GET went to aiohttp
    writer.close()


@pytest.mark.parametrize("shape", ["chunked", "expect", "close", "query", "escaped", "http10", "gzip"])
async def test_answers_of_other_shapes_go_to_aiohttp_and_the_lane_goes_on(lane_client: TestClient,
                                                                          shape: str) -> None:
    aid, token, _ = await _played(lane_client)
    body = orjson.dumps({"index": 0, "choice": "A"})
    if shape == "chunked":
        raw = (f"POST {A}/{aid}/answers HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
               f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n").encode() + body + b"\r\n0\r\n\r\n"
    elif shape == "expect":
        raw = _answer(aid, token, 0, extra="Expect: 100-continue\r\n")
    elif shape == "close":
        raw = _answer(aid, token, 0, extra="Connection: close\r\n")
    elif shape == "query":
        raw = _answer(aid, token, 0, target=f"{A}/{aid}/answers?from=app")
    elif shape == "escaped":
        raw = _answer(aid, token, 0, target=f"{A}/{aid.replace('.', '%2E')}/answers")
    elif shape == "http10":
        raw = _answer(aid, token, 0, version="HTTP/1.0")
    else:
        raw = _answer(aid, token, 0, extra="Content-Encoding: gzip\r\n")
    before = _lane_count(lane_client)
    reader, writer = await _connect(lane_client)
    writer.write(raw)
    if shape == "expect":
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 100")
        await reader.readline()
    if shape == "http10":
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert b" 200 " in status_line, status_line
        writer.close()
        return
    (status, headers, reply), = await _read_responses(reader, 1)
    if shape == "gzip":  # aiohttp cannot inflate a body that is not gzip: the contract's 400
        assert status == 400 and reply["error"]["code"] == "bad_request", reply
    else:
        assert status == 200 and reply["index"] == 0, reply
    if shape == "close":  # a plain answer asking to close: the lane's, then the connection ends
        assert headers["connection"] == "close"
        assert _lane_count(lane_client) == before + 1
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        return
    assert _lane_count(lane_client) == before
    # the connection goes on, and a plain answer right after is the lane's: a phone's keep-alive
    # connection mixes answers with everything else
    writer.write(_answer(aid, token, 1))
    (status, _, reply), = await _read_responses(reader, 1)
    assert status == 200 and reply["index"] == 1
    assert _lane_count(lane_client) == before + 1
    writer.close()


async def test_garbage_gets_the_contract_error_and_the_server_lives_on(lane_client: TestClient) -> None:
    aid, token, _ = await _played(lane_client)
    for raw in (b"POST /api/v1/attempts/x/answers HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                b"\x00\x01garbage\r\n\r\n", b"POST " + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n",
                b"POST /api/v1/attempts/x/answers HTTP/1.1\r\n Folded: x\r\nContent-Length: 0\r\n\r\n"):
        reader, writer = await _connect(lane_client)
        writer.write(raw)
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.split()[1] in (b"400", b"413", b"431"), (raw[:40], status_line)
        writer.close()
    reader, writer = await _connect(lane_client)
    writer.write(_answer(aid, token, 0))
    (status, _, _), = await _read_responses(reader, 1)
    assert status == 200
    writer.close()


async def test_an_answer_after_redis_lost_its_scripts_is_retried_once_and_lands(lane_client: TestClient,
                                                                                 redis_url: str) -> None:
    """A Redis restarted without its script cache answers NOSCRIPT: the lane's reply callback
    loads the script and runs the call again, so the participant sees a normal answer."""
    aid, token, _ = await _played(lane_client)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.script_flush()
        before = _lane_count(lane_client)
        reader, writer = await _connect(lane_client)
        writer.write(_answer(aid, token, 0))
        (status, _, reply), = await _read_responses(reader, 1)
        assert status == 200 and reply["index"] == 0, reply
        assert _lane_count(lane_client) == before + 1
        writer.write(_answer(aid, token, 0))  # the same answer again: idempotent, the script is back
        (status, _, again), = await _read_responses(reader, 1)
        assert status == 200 and again == reply
        writer.close()
        stats = await redis.hget(keys.stats(aid.split(".")[0]), "answers")
        assert int(stats) == 1
    finally:
        await redis.aclose()


async def test_a_client_gone_before_its_reply_changes_nothing_for_others(lane_client: TestClient,
                                                                         redis_url: str) -> None:
    """Writes are paused in Valkey, so each answer is out to Redis and still unanswered when its
    client resets the connection: every one of them is recorded, the late replies are dropped, and
    the server and the next connection carry on."""
    aid, token, _ = await _played(lane_client)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.execute_command("CLIENT", "PAUSE", 1000, "WRITE")
        before = _lane_count(lane_client)
        writers = []
        for index in range(3):
            _, writer = await _connect(lane_client)
            writer.write(_answer(aid, token, index))
            await writer.drain()
            writers.append(writer)
        await until(lambda: _lane_count(lane_client) >= before + 3, what="three answers waiting on Redis")
        for writer in writers:
            writer.transport.abort()  # gone before any reply can arrive
        await redis.execute_command("CLIENT", "UNPAUSE")
        reader, writer = await _connect(lane_client)
        writer.write(_answer(aid, token, 3))
        (status, _, reply), = await _read_responses(reader, 1)
        assert status == 200 and reply["index"] == 3
        writer.close()
        assert int(await redis.hget(keys.stats(aid.split(".")[0]), "answers") or 0) == 4
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
        await redis.aclose()


async def test_a_pipeline_split_at_any_points_gets_the_same_replies(redis_url: str, data_dir: Path) -> None:
    """The same pipeline of every kind of request (plain answers, an aiohttp GET, a chunked
    answer, a 404) cut at random points, each piece its own segment; the replies are the same as
    when it arrives in one piece, and the lane serves the same requests."""
    import random

    lane_client = await _client(redis_url, data_dir, True, rate_limits=False)  # 150 answers of one user
    try:
        await _split_pipelines(lane_client, random.Random(2026))
    finally:
        await lane_client.close()


async def _split_pipelines(lane_client: TestClient, rng: Any) -> None:
    aid, token, _ = await _played(lane_client)
    body = orjson.dumps({"index": 1, "choice": "A"})
    chunked = (f"POST {A}/{aid}/answers HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
               f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n").encode() + body + b"\r\n0\r\n\r\n"
    get = f"GET {A}/{aid} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    pipeline = (_answer(aid, token, 0) + get + chunked + b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                + _answer(aid, token, 1) + _answer(aid, token, 0, "B"))
    reader, writer = await _connect(lane_client)
    writer.write(pipeline)
    expected = [_shape(s, b) for s, _, b in await _read_responses(reader, 6)]
    writer.close()
    assert [s for s, *_ in expected] == [200, 200, 200, 404, 200, 409]
    for _ in range(25):
        cuts = sorted(rng.sample(range(1, len(pipeline)), rng.randint(1, 40)))
        before = _lane_count(lane_client)
        reader, writer = await _connect(lane_client)
        for start, end in zip([0, *cuts], [*cuts, len(pipeline)], strict=True):
            writer.write(pipeline[start:end])
            await writer.drain()
            await asyncio.sleep(0)
        got = [_shape(s, b) for s, _, b in await _read_responses(reader, 6)]
        writer.close()
        assert got == expected, cuts
        assert _lane_count(lane_client) - before == 3  # the three plain answers, whatever the cuts


def _shape(status: int, body: Any) -> tuple[int, Any, Any]:
    """A reply as the pipeline test compares it: an answer by its index and verdict, an error by
    its code, the attempt by its fields (its list of answers grows from run to run)."""
    if "error" in body:
        return status, body["error"]["code"], None
    if "index" in body:
        return status, body["index"], body.get("correct")
    return status, sorted(body), None
