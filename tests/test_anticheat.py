"""Anti-cheat: the answer key stays on the server, one active attempt per user, replays change
nothing, other users' attempts are invisible, organizers stay inside their subtree."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import PLAY, SETTINGS, STORAGE
from contest.auth import b64d, b64e
from contest.evidence import client_counts
from contest.web.routes import ROUTES
from leaderboard import keys
from tests.fixtures.app import Seeded, admin_headers, seed_contest
from tests.test_attempts import VILLAGE_A, key_of, play
from tests.test_review import drain

# Never in a participant's view of the contest: the key itself, the bank's explanation, the
# internal encodings of the attempt hash, the bank's question ids (a leaked bank is then a key).
BANNED_KEYS = {"answer", "explanation", "shown", "paper", "perm", "question_id"}


def walk(value: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """Every (path, key, value) of a JSON document."""
    out: list[tuple[str, str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((path, k, v))
            out.extend(walk(v, f"{path}.{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(walk(v, f"{path}[{i}]"))
    return out


class Recorder:
    """A participant session that keeps every response it got, tagged by endpoint and phase."""

    def __init__(self, client: TestClient, user: dict[str, Any]) -> None:
        self.client = client
        self.user = user
        self.seen: list[tuple[str, bool, Any]] = []  # (endpoint, after finish, body)
        self.finished = False

    async def call(self, name: str, method: str, path: str, **kw: Any) -> Any:
        resp = await self.client.request(method, path, headers=self.user["headers"], **kw)
        assert resp.status < 500, (name, resp.status)
        if resp.content_type == "text/event-stream":
            line = b""
            while not line.startswith(b"data:"):
                line = await asyncio.wait_for(resp.content.readline(), 5)
            resp.close()
            body = orjson.loads(line[5:])
        else:
            body = await resp.json()
        self.seen.append((name, self.finished, body))
        return body


async def session(client: TestClient, seeded: Seeded, *, use_submit: bool) -> tuple[Recorder, list[str]]:
    """Every participant endpoint, before and after finishing one attempt."""
    cid = seeded.contest_id
    rec = Recorder(client, await seeded.register(org_id=VILLAGE_A))

    async def public_views() -> None:
        await rec.call("contests", "GET", "/api/v1/contests")
        await rec.call("contest", "GET", f"/api/v1/contests/{cid}")
        await rec.call("me", "GET", "/api/v1/me")
        await rec.call("leaderboard", "GET", f"/api/v1/contests/{cid}/leaderboard")
        await rec.call("leaderboard_me", "GET", f"/api/v1/contests/{cid}/leaderboard/me")
        await rec.call("orgs", "GET", f"/api/v1/contests/{cid}/orgs")
        await rec.call("live", "GET", f"/api/v1/contests/{cid}/live")

    await public_views()
    attempt = await rec.call("start", "POST", f"/api/v1/contests/{cid}/attempts")
    aid = attempt["attempt_id"]
    correct = await key_of(client, aid)
    await rec.call("resume", "POST", f"/api/v1/contests/{cid}/attempts")
    questions = attempt["questions"]
    answers = [{"index": q["index"], "choice": list(correct[q["index"]]) if q["type"] == "multiple"
                else correct[q["index"]]} for q in questions]
    if use_submit:
        await rec.call("answer", "POST", f"/api/v1/attempts/{aid}/answers", json=answers[0])
        await rec.call("get", "GET", f"/api/v1/attempts/{aid}")
        rec.finished = True
        await rec.call("submit", "POST", f"/api/v1/attempts/{aid}/submit", json={"answers": answers})
    else:
        for body in answers:
            await rec.call("answer", "POST", f"/api/v1/attempts/{aid}/answers", json=body)
            await rec.call("answer_replay", "POST", f"/api/v1/attempts/{aid}/answers", json=body)
        await rec.call("get", "GET", f"/api/v1/attempts/{aid}")
        rec.finished = True
        await rec.call("finish", "POST", f"/api/v1/attempts/{aid}/finish")
    await rec.call("get", "GET", f"/api/v1/attempts/{aid}")
    await public_views()
    return rec, correct


def assert_no_key_leaks(rec: Recorder, feedback: str, correct: list[str]) -> None:
    for endpoint, after_finish, body in rec.seen:
        for path, key, value in walk(body):
            where = f"{endpoint}{path}.{key}"
            assert key not in BANNED_KEYS, where
            if key == "correct_choice":
                assert feedback == "immediate" and endpoint in ("answer", "answer_replay"), where
            if key in ("correct", "points_awarded") and value is not None and feedback != "immediate":
                # per-question verdicts reveal the key: only after the finish, and only in `end` mode
                assert feedback == "end" and after_finish, where
        if feedback == "immediate" or (feedback == "end" and after_finish):
            continue
        # nothing else may spell out the key either, e.g. in a free-text field
        text = orjson.dumps(body).decode()
        assert "correct_choice" not in text, endpoint
    if feedback == "immediate":
        shown = [b["correct_choice"] for e, _, b in rec.seen if e == "answer"]
        assert len(shown) >= 1
        for item in shown:
            assert "".join(item) in correct


@pytest.mark.parametrize("feedback", ["immediate", "end", "none"])
@pytest.mark.parametrize("use_submit", [False, True], ids=["answers", "submit"])
async def test_the_answer_key_never_leaves_the_server(client: TestClient, feedback: str, use_submit: bool) -> None:
    seeded = await seed_contest(client, feedback=feedback)
    rec, correct = await session(client, seeded, use_submit=use_submit)
    endpoints = {e for e, _, _ in rec.seen}
    assert {"contests", "contest", "me", "leaderboard", "leaderboard_me", "orgs", "live", "start", "resume",
            "answer", "get"} <= endpoints
    assert_no_key_leaks(rec, feedback, correct)
    final = next(b for e, after, b in reversed(rec.seen) if e == "get" and after)
    assert final["finished"] is True
    if feedback == "none":
        assert all("correct" not in a for a in final["answered"])
    verdicts = [v for _, after, b in rec.seen for _, k, v in walk(b) if k == "correct" and v is not None]
    if feedback == "end":
        assert verdicts and all(a.get("correct") is not None for a in final["answered"])  # revealed at the end
    if feedback == "none":
        assert verdicts == []


async def test_one_active_attempt_per_user_across_devices(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    path = f"/api/v1/contests/{seeded.contest_id}/attempts"
    # two phones of one account press "start" at the same moment, several times
    responses = await asyncio.gather(*(client.post(path, headers=user["headers"]) for _ in range(6)))
    bodies = [await r.json() for r in responses]
    assert sorted(r.status for r in responses) == [200] * 5 + [201]
    assert len({b["attempt_id"] for b in bodies}) == 1
    stats = await (await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats",
                                    headers=admin_headers())).json()
    assert stats["attempts_started"] == 1


async def test_a_replayed_request_changes_nothing(client: TestClient) -> None:
    seeded = await seed_contest(client)
    cid = seeded.contest_id
    user = await seeded.register()
    attempt = await (await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])).json()
    aid = attempt["attempt_id"]
    q = attempt["questions"][0]
    captured = {"index": q["index"], "choice": q["options"][0]["key"]}
    replies = await asyncio.gather(*(client.post(f"/api/v1/attempts/{aid}/answers", json=captured,
                                                 headers=user["headers"]) for _ in range(8)))
    bodies = [await r.json() for r in replies]
    assert {r.status for r in replies} == {200}
    assert all(b == bodies[0] for b in bodies)
    other = next(o["key"] for o in q["options"] if o["key"] != captured["choice"])
    resp = await client.post(f"/api/v1/attempts/{aid}/answers", json={"index": q["index"], "choice": other},
                             headers=user["headers"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_answered"
    finishes = await asyncio.gather(*(client.post(f"/api/v1/attempts/{aid}/finish", headers=user["headers"])
                                      for _ in range(4)))
    results = [await r.json() for r in finishes]
    assert all(r == results[0] for r in results)
    redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
    try:
        stats = await redis.hgetall(keys.stats(cid))
    finally:
        await redis.aclose()
    assert int(stats[b"answers"]) == 1 and int(stats[b"attempts_finished"]) == 1
    await drain(client)
    rows = await client.server.app[STORAGE].count_rows(cid)
    assert (rows["attempts"], rows["finished"], rows["answers"]) == (1, 1, 1)


async def test_attempts_are_unguessable_and_private(client: TestClient) -> None:
    seeded = await seed_contest(client)
    owner, thief = await seeded.register(), await seeded.register()
    ids = set()
    for _ in range(3):
        attempt = await (await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts",
                                           headers=owner["headers"])).json()
        aid = attempt["attempt_id"]
        ids.add(aid)
        token = aid.split(".")[-1]
        assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", token)  # >= 96 random bits
        for method, path, body in (("GET", f"/api/v1/attempts/{aid}", None),
                                   ("POST", f"/api/v1/attempts/{aid}/answers", {"index": 0, "choice": "A"}),
                                   ("POST", f"/api/v1/attempts/{aid}/submit", {"answers": []}),
                                   ("POST", f"/api/v1/attempts/{aid}/finish", None)):
            resp = await client.request(method, path, json=body, headers=thief["headers"])
            assert resp.status == 404, (method, path)
        await client.post(f"/api/v1/attempts/{aid}/finish", headers=owner["headers"])
    assert len(ids) == 3
    # a participant token is not an organizer's, whatever it asks for
    resp = await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats", headers=owner["headers"])
    assert resp.status == 403


# Admin routes that organizers may call without an org scope: they read contest settings only.
UNSCOPED_ORGANIZER_READS = {("GET", "/api/v1/admin/contests"), ("GET", "/api/v1/admin/contests/{cid}")}


def _admin_routes() -> list[Any]:
    return [r for r in ROUTES if r.path.startswith("/api/v1/admin/")]


def test_every_admin_route_is_admin_only_or_org_scoped() -> None:
    for route in _admin_routes():
        assert route.auth, route.path
        assert "participant" not in route.auth, route.path
        if "organizer" in route.auth and (route.method, route.path) not in UNSCOPED_ORGANIZER_READS:
            assert "org_id" in route.query, f"{route.method} {route.path} lets organizers in without a scope"


async def test_out_of_scope_organizers_get_403_on_every_admin_route(client: TestClient) -> None:
    seeded = await seed_contest(client)
    cid = seeded.contest_id
    settings = client.server.app[SETTINGS]
    village = seeded.organizer(VILLAGE_A, settings)  # a village organizer...
    elsewhere = "360302002002"  # ...asking about the neighbouring village
    checked = 0
    for route in _admin_routes():
        path = route.path.replace("{cid}", cid).replace("{aid}", f"{cid}.x").replace("{sid}", "s0")
        path = path.replace("{name}", "questions.csv").replace("{qid}", "q-x").replace("{lid}", "l-x")
        params = {"org_id": elsewhere} if "org_id" in route.query else {}
        kwargs: dict[str, Any] = {"params": params}
        if route.method in ("POST", "PATCH"):
            kwargs["json"] = {}
        resp = await client.request(route.method, path, headers=village, **kwargs)
        if (route.method, route.path) in UNSCOPED_ORGANIZER_READS:
            assert resp.status == 200, route.path
            continue
        assert resp.status == 403, f"{route.method} {route.path}: {resp.status}"
        assert (await resp.json())["error"]["code"] == "forbidden"
        checked += 1
    assert checked >= 15
    # inside the scope the same organizer is served, scoped to their subtree by default
    resp = await client.get(f"/api/v1/admin/contests/{cid}/stats", headers=village)
    assert resp.status == 200 and (await resp.json())["org_id"] == VILLAGE_A


async def test_organizers_see_full_names_of_their_own_members_only(client: TestClient) -> None:
    seeded = await seed_contest(client)
    mine = await seeded.register(org_id=VILLAGE_A, name="张三丰")
    theirs = await seeded.register(org_id="360302002002", name="李四光")
    for user in (mine, theirs):
        await play(client, user, seeded, right=3)
    organizer = seeded.organizer(VILLAGE_A, client.server.app[SETTINGS])
    url = f"/api/v1/contests/{seeded.contest_id}/leaderboard"
    names = {e["user_id"]: e["name"] for e in (await (await client.get(url, headers=organizer)).json())["entries"]}
    assert names == {mine["user_id"]: "张三丰", theirs["user_id"]: "李*"}
    public = {e["user_id"]: e["name"] for e in (await (await client.get(url)).json())["entries"]}
    assert public == {mine["user_id"]: "张*", theirs["user_id"]: "李*"}
    participant = {e["user_id"]: e["name"] for e in (await (await client.get(url, headers=mine["headers"])).json()
                                                      )["entries"]}
    assert participant == public


async def test_a_token_is_bound_to_its_user_and_role(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    payload, _, signature = user["token"].partition(".")
    body = orjson.loads(b64d(payload))
    for change in ({"r": "a"}, {"r": "o", "o": None}, {"u": body["u"] + "0"}, {"e": body["e"] + 10**6}):
        forged = f"{b64e(orjson.dumps({**body, **change}))}.{signature}"
        resp = await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats",
                                headers={"Authorization": f"Bearer {forged}"})
        assert resp.status == 401, change
        resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts",
                                 headers={"Authorization": f"Bearer {forged}"})
        assert resp.status == 401, change


async def test_timing_is_the_servers_own(client: TestClient) -> None:
    """Client-sent times are ignored: Redis TIME stamps the answer and decides the flag."""
    seeded = await seed_contest(client, min_answer_ms=60_000)
    user = await seeded.register()
    attempt = await (await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts",
                                       headers=user["headers"])).json()
    aid = attempt["attempt_id"]
    q = attempt["questions"][0]
    before = int(time.time() * 1000)
    resp = await client.post(f"/api/v1/attempts/{aid}/answers", headers=user["headers"], json={
        "index": q["index"], "choice": q["options"][0]["key"], "answered_at": 0, "elapsed_ms": 90_000,
        "started_at": 1, "duration_ms": 90_000})
    assert resp.status == 200
    state = await (await client.get(f"/api/v1/attempts/{aid}", headers=user["headers"])).json()
    assert before - 1000 <= state["answered"][0]["answered_at"] <= int(time.time() * 1000) + 1000
    stats = await (await client.get(f"/api/v1/admin/contests/{seeded.contest_id}/stats",
                                    headers=admin_headers())).json()
    assert stats["flagged_answers"] == 1  # answered within a second of the start: flagged all the same


class _SkewedTime:
    """The ``time`` module as a worker with a wrong clock sees it."""

    def __init__(self, offset_s: float) -> None:
        self.offset_s = offset_s

    def time(self) -> float:
        return time.time() + self.offset_s


@pytest.mark.parametrize("offset_s", [-120.0, 120.0])
async def test_a_worker_clock_off_by_minutes_changes_nothing(client: TestClient, offset_s: float,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis TIME is the clock: the window's edges, deadlines and answer times ignore the worker's."""
    import contest.play

    now = int(time.time() * 1000)
    open_now = await seed_contest(client, contest_id="edge_open", starts_at=now - 30_000, ends_at=now + 30_000,
                                  time_limit_s=20)
    user = await open_now.register()
    monkeypatch.setattr(contest.play, "time", _SkewedTime(offset_s))
    resp = await client.post("/api/v1/contests/edge_open/attempts", headers=user["headers"])
    assert resp.status == 201, await resp.text()
    attempt = await resp.json()
    # the deadline comes from Redis time, not from the skewed worker
    assert abs(attempt["started_at"] - int(time.time() * 1000)) < 5_000
    assert attempt["deadline_at"] - attempt["started_at"] == 20_000
    await seed_contest(client, contest_id="edge_over", starts_at=now - 60_000, ends_at=now - 1_000)
    resp = await client.post("/api/v1/contests/edge_over/attempts", headers=user["headers"])
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "contest_closed"


@pytest.mark.parametrize("shards", [1, 4])
async def test_starts_note_ips_and_devices_in_the_same_call(client: TestClient, redis_client: Any,
                                                            shards: int) -> None:
    """The START script notes the IP and device of every start and resume (review evidence), in
    the member's shard; the review reads them back from there."""
    seeded = await seed_contest(client, shards=shards)
    user = await seeded.register()
    url = f"/api/v1/contests/{seeded.contest_id}/attempts"
    for agent in ("Mozilla/5.0 (iPhone) MicroMessenger/8.0", "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0"):
        resp = await client.post(url, headers={**user["headers"], "User-Agent": agent})
        assert resp.status in (200, 201), await resp.text()
    play = client.server.app[PLAY]
    contest = play.contest(seeded.contest_id)
    shard = play.shard_of(contest, user["user_id"])
    # noted as fixed-width keyed tokens in the member's own hash (issue 18): no address is stored
    ips, devices = await redis_client.hmget(keys.user_contest(seeded.contest_id, user["user_id"], shard),
                                            keys.USER_IPS, keys.USER_DEVICES)
    assert len(devices) == 2 * keys.EVIDENCE_TOKEN_CHARS and len(ips) == keys.EVIDENCE_TOKEN_CHARS
    assert b"127.0.0.1" not in ips
    counts = await client_counts(redis_client, seeded.contest_id, [user["user_id"]],
                                 lambda uid: play.shard_of(contest, uid))
    assert counts[user["user_id"]] == (1, 2)


async def test_evidence_is_bounded_per_member(client: TestClient, redis_client: Any) -> None:
    """A member starting (or resuming) from ever new devices leaves at most EVIDENCE_MAX tokens:
    the count reads "16 or more" and the member's hash stops growing (issue 18)."""
    seeded = await seed_contest(client)
    user = await seeded.register()
    url = f"/api/v1/contests/{seeded.contest_id}/attempts"
    for n in range(keys.EVIDENCE_MAX + 5):
        resp = await client.post(url, headers={**user["headers"], "User-Agent": f"Mozilla/5.0 phone-{n}"})
        assert resp.status in (200, 201), await resp.text()
    devices = await redis_client.hget(keys.user_contest(seeded.contest_id, user["user_id"]), keys.USER_DEVICES)
    assert len(devices) == keys.EVIDENCE_MAX * keys.EVIDENCE_TOKEN_CHARS
    counts = await client_counts(redis_client, seeded.contest_id, [user["user_id"]])
    assert counts[user["user_id"]] == (1, keys.EVIDENCE_MAX)
