"""Admin and organizer API: imports, contests, stats, exports and rebuild, over HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import SETTINGS
from contest.auth import issue_token
from contest.settings import Settings
from leaderboard import keys
from tests.fixtures.app import SAMPLE, admin_headers, bearer, seed_contest

QHEADER = ["id", "type", "stem", "option_a", "option_b", "option_c", "option_d", "answer", "category",
           "difficulty", "points", "explanation"]
QIMPORT = "/api/v1/admin/questions/import"
OIMPORT = "/api/v1/admin/orgs/import"
CONTESTS = "/api/v1/admin/contests"


def qcsv(rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(QHEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def good_row(qid: str = "T001", stem: str = "一加一等于几？") -> list[object]:
    return [qid, "single", stem, "1", "2", "3", "4", "B", "测试", 1, 10, ""]


async def assert_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    text = await resp.text()
    assert resp.status == status, text
    body = await resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


async def bank_total(client: TestClient) -> int:
    resp = await client.get("/api/v1/admin/questions", headers=admin_headers())
    assert resp.status == 200
    return (await resp.json())["total"]


async def post_csv(client: TestClient, url: str, data: bytes) -> aiohttp.ClientResponse:
    return await client.post(url, data=data, headers={**admin_headers(), "Content-Type": "text/csv"})


def contest_body(**over: Any) -> dict[str, Any]:
    import orjson

    body = orjson.loads((SAMPLE / "contest.json").read_bytes())
    body.pop("contest_id", None)
    now = int(time.time() * 1000)
    body.update(starts_at=now - 60_000, ends_at=now + 3_600_000)
    body.update(over)
    return body


# --- question import -------------------------------------------------------------------------------

async def test_question_import_is_all_or_nothing(client: TestClient) -> None:
    await seed_contest(client)
    before = await bank_total(client)
    data = qcsv([
        good_row("T001"),
        ["T002", "single", "", "a", "b", "c", "d", "A", "测试", 1, 10, ""],         # empty stem
        ["T003", "single", "哪个？", "a", "b", "c", "d", "Z", "测试", 9, 10, ""],    # bad answer, difficulty
    ])
    err = await assert_error(await post_csv(client, QIMPORT, data), 400, "validation_failed")
    errors = err["details"]["errors"]
    assert isinstance(errors, list) and errors
    for e in errors:
        assert {"row", "column", "message"} <= set(e), e
    rows = {e["row"] for e in errors}
    assert rows == {3, 4}, errors
    assert await bank_total(client) == before
    resp = await client.get("/api/v1/admin/questions", params={"q": "T001"}, headers=admin_headers())
    assert (await resp.json())["total"] == 0


async def test_question_reimport_updates(client: TestClient) -> None:
    await seed_contest(client)
    before = await bank_total(client)
    resp = await post_csv(client, QIMPORT, qcsv([good_row("T001")]))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["imported"] == 1 and body["updated"] == 0 and body["errors"] == []
    assert await bank_total(client) == before + 1
    resp = await post_csv(client, QIMPORT, qcsv([good_row("T001", stem="二加二等于几？")]))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["imported"] == 0 and body["updated"] == 1
    assert await bank_total(client) == before + 1
    resp = await client.get("/api/v1/admin/questions", params={"q": "二加二"}, headers=admin_headers())
    found = (await resp.json())["questions"]
    assert [q["id"] for q in found] == ["T001"]


async def test_question_import_multipart(client: TestClient) -> None:
    await seed_contest(client)
    before = await bank_total(client)
    form = aiohttp.FormData()
    form.add_field("file", qcsv([good_row("M001"), good_row("M002", "二问")]), filename="bank.csv",
                   content_type="text/csv")
    resp = await client.post(QIMPORT, data=form, headers=admin_headers())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["imported"] == 2 and body["updated"] == 0
    assert await bank_total(client) == before + 2
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="x.csv", content_type="text/csv")
    err = await assert_error(await client.post(QIMPORT, data=form, headers=admin_headers()), 400)
    assert err["code"] == "validation_failed"


async def test_import_needs_admin(client: TestClient) -> None:
    await assert_error(await client.post(QIMPORT, data=qcsv([good_row()]),
                                         headers={"Content-Type": "text/csv"}), 401)
    token, _ = issue_token(b"test-secret", user_id="org", role="organizer", org_id="360000", name="o", ttl_s=600)
    await assert_error(await client.post(QIMPORT, data=qcsv([good_row()]),
                                         headers={**bearer(token), "Content-Type": "text/csv"}), 403, "forbidden")


# --- org import ------------------------------------------------------------------------------------

async def test_org_import_errors_list_rows(client: TestClient) -> None:
    await seed_contest(client)
    data = ("org_id,parent_id,name,level,members\r\n"
            "900000,,新省,1,0\r\n"
            "900100,999999,孤儿市,2,0\r\n"
            "900000,,重复省,1,0\r\n").encode()
    err = await assert_error(await post_csv(client, OIMPORT, data), 400, "validation_failed")
    rows = {e["row"] for e in err["details"]["errors"]}
    assert 3 in rows and 4 in rows, err
    columns = {e["row"]: e["column"] for e in err["details"]["errors"]}
    assert columns[3] == "parent_id" and columns[4] == "org_id", err
    resp = await client.get("/api/v1/orgs", params={"parent_id": "900000"})
    await assert_error(resp, 404, "not_found")  # nothing of the bad file was imported


# --- contests --------------------------------------------------------------------------------------

async def test_contest_create_validation(client: TestClient) -> None:
    await seed_contest(client)
    h = admin_headers()
    now = int(time.time() * 1000)
    err = await assert_error(await client.post(CONTESTS, json=contest_body(starts_at=now, ends_at=now - 1000),
                                               headers=h), 400, "validation_failed")
    assert "ends_at" in err["details"]["fields"]
    too_many = {"paper": {"draw": [{"category": "法律", "difficulty": None, "count": 150}],
                          "shuffle_questions": True, "shuffle_options": True}}
    err = await assert_error(await client.post(CONTESTS, json=contest_body(**too_many), headers=h), 400,
                             "validation_failed")
    assert any(k.startswith("paper") for k in err["details"].get("fields", {})), err
    nothing = {"paper": {"draw": [{"category": "没有这个分类", "difficulty": None, "count": 1}]}}
    await assert_error(await client.post(CONTESTS, json=contest_body(**nothing), headers=h), 400)
    err = await assert_error(await client.post(CONTESTS, json=contest_body(timezone="Mars/Olympus"), headers=h),
                             400, "validation_failed")
    assert "timezone" in err["details"]["fields"]
    err = await assert_error(await client.post(CONTESTS, json=contest_body(time_limit_s=True), headers=h),
                             400, "validation_failed")
    assert "time_limit_s" in err["details"]["fields"]
    err = await assert_error(await client.post(CONTESTS, json=contest_body(attempts_per_day="3"), headers=h),
                             400, "validation_failed")
    assert "attempts_per_day" in err["details"]["fields"]
    err = await assert_error(await client.post(CONTESTS, json=contest_body(ranking="worst"), headers=h),
                             400, "validation_failed")
    assert "ranking" in err["details"]["fields"]
    await assert_error(await client.post(CONTESTS, data=b"{oops", headers={**h, "Content-Type": "application/json"}),
                       400, "invalid_json")


async def test_contest_lifecycle(client: TestClient) -> None:
    seeded = await seed_contest(client)
    h = admin_headers()
    resp = await client.post(CONTESTS, json=contest_body(contest_id="draft1", title="草稿"), headers=h)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["contest_id"] == "draft1" and body["status"] == "draft"
    await assert_error(await client.post(CONTESTS, json=contest_body(contest_id="draft1"), headers=h), 409)

    listed = await (await client.get("/api/v1/contests")).json()
    ids = [c["contest_id"] for c in listed["contests"]]
    assert seeded.contest_id in ids and "draft1" not in ids
    for c in listed["contests"]:
        assert {"contest_id", "title", "starts_at", "ends_at", "status"} <= set(c)
        assert c["status"] == "published"
    await assert_error(await client.get("/api/v1/contests/draft1"), 404, "not_found")

    resp = await client.patch(f"{CONTESTS}/draft1", json={"title": "新标题"}, headers=h)
    assert resp.status == 200, await resp.text()
    got = await (await client.get(f"{CONTESTS}/draft1", headers=h)).json()
    assert got["title"] == "新标题"
    err = await assert_error(await client.patch(f"{CONTESTS}/draft1", json={"ends_at": 1}, headers=h), 400)
    assert "ends_at" in err["details"]["fields"]
    await assert_error(await client.patch(f"{CONTESTS}/nope", json={"title": "x"}, headers=h), 404, "not_found")

    resp = await client.post(f"{CONTESTS}/draft1/publish", headers=h)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "published"
    listed = await (await client.get("/api/v1/contests")).json()
    assert "draft1" in [c["contest_id"] for c in listed["contests"]]
    detail = await client.get("/api/v1/contests/draft1")
    assert detail.status == 200
    d = await detail.json()
    assert d["title"] == "新标题"
    for key in ("title", "description", "starts_at", "ends_at", "questions_per_attempt", "time_limit_s",
                "question_time_limit_s", "attempts_per_day", "attempts_total", "ranking", "feedback", "timezone"):
        assert key in d, key
    await assert_error(await client.get("/api/v1/contests/unknown-contest"), 404, "not_found")
    await assert_error(await client.post(f"{CONTESTS}/unknown-contest/publish", headers=h), 404, "not_found")


# --- stats, scope ----------------------------------------------------------------------------------

STATS_FIELDS = {"registrants", "participants", "attempts_started", "attempts_finished", "answers", "answers_per_s",
                "accuracy", "questions"}


async def test_stats_shape_and_organizer_scope(client: TestClient, app_settings: Settings) -> None:
    seeded = await seed_contest(client)
    await seeded.register("360101001001")
    url = f"{CONTESTS}/{seeded.contest_id}/stats"
    resp = await client.get(url, headers=admin_headers())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert STATS_FIELDS <= set(body), body
    for key in STATS_FIELDS - {"questions", "answers_per_s", "accuracy"}:
        assert isinstance(body[key], int), (key, body)
    assert isinstance(body["answers_per_s"], int | float) and isinstance(body["accuracy"], int | float)
    assert isinstance(body["questions"], list)
    assert body["registrants"] >= 1

    org = seeded.organizer("360100", app_settings)
    resp = await client.get(url, headers=org)
    assert resp.status == 200, await resp.text()
    assert STATS_FIELDS <= set(await resp.json())
    resp = await client.get(url, params={"org_id": "360101001001"}, headers=org)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["registrants"] == 1
    await assert_error(await client.get(url, params={"org_id": "360302002001"}, headers=org), 403, "forbidden")
    await assert_error(await client.get(url, params={"org_id": "360000"}, headers=org), 403, "forbidden")
    export = f"{CONTESTS}/{seeded.contest_id}/export"
    await assert_error(await client.get(export, params={"org_id": "360300"}, headers=org), 403, "forbidden")
    # organizers may read but not change
    await assert_error(await client.post(f"{CONTESTS}/{seeded.contest_id}/rebuild", headers=org), 403, "forbidden")
    await assert_error(await client.patch(f"{CONTESTS}/{seeded.contest_id}", json={"title": "x"}, headers=org),
                       403, "forbidden")
    await assert_error(await client.get(f"{CONTESTS}/nope/stats", headers=admin_headers()), 404, "not_found")


# --- play, export, rebuild -------------------------------------------------------------------------

async def play_one(client: TestClient, headers: dict[str, str], contest_id: str) -> tuple[str, int]:
    resp = await client.post(f"/api/v1/contests/{contest_id}/attempts", headers=headers)
    assert resp.status == 201, await resp.text()
    attempt = await resp.json()
    aid = attempt["attempt_id"]
    for q in attempt["questions"]:
        resp = await client.post(f"/api/v1/attempts/{aid}/answers", headers=headers,
                                 json={"index": q["index"], "choice": q["options"][0]["key"]})
        assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/v1/attempts/{aid}/finish", headers=headers)
    assert resp.status == 200, await resp.text()
    return aid, len(attempt["questions"])


async def wait_flushed(client: TestClient) -> None:
    deadline = time.monotonic() + 5
    while True:
        body = await (await client.get("/readyz")).json()
        if body.get("backlog") == 0:
            return
        assert time.monotonic() < deadline, f"flusher backlog never drained: {body}"
        await asyncio.sleep(0.05)


async def read_csv(resp: aiohttp.ClientResponse) -> list[list[str]]:
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/csv")
    raw = await resp.read()
    text = raw.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


async def test_export_after_play(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    aid, n = await play_one(client, user["headers"], seeded.contest_id)
    await wait_flushed(client)
    url = f"{CONTESTS}/{seeded.contest_id}/export"
    rows = await read_csv(await client.get(url, params={"what": "answers", "format": "csv"},
                                           headers=admin_headers()))
    assert rows[0][:8] == ["attempt_id", "user_id", "index", "question_id", "choice", "correct",
                           "points_awarded", "answered_at"]
    assert len(rows) - 1 == n
    assert {r[0] for r in rows[1:]} == {aid}
    assert sorted(int(r[2]) for r in rows[1:]) == list(range(n))
    rows = await read_csv(await client.get(url, params={"what": "results"}, headers=admin_headers()))
    assert rows[0][:10] == ["attempt_id", "user_id", "name", "org_id", "score", "correct_count",
                            "question_count", "duration_ms", "started_at", "finished_at"]
    assert len(rows) == 2 and rows[1][0] == aid and rows[1][1] == user["user_id"] and rows[1][6] == str(n)
    await assert_error(await client.get(url, params={"what": "everything"}, headers=admin_headers()), 400,
                       "validation_failed")


async def test_rebuild_keeps_leaderboard(client: TestClient) -> None:
    seeded = await seed_contest(client)
    for name in ("张三", "李四", "王五"):
        user = await seeded.register(name=name)
        await play_one(client, user["headers"], seeded.contest_id)
    await wait_flushed(client)
    board_url = f"/api/v1/contests/{seeded.contest_id}/leaderboard"
    before = await (await client.get(board_url)).json()
    assert before["total"] == 3 and len(before["entries"]) == 3
    stats_url = f"{CONTESTS}/{seeded.contest_id}/stats"
    stats_before = await (await client.get(stats_url, headers=admin_headers())).json()
    resp = await client.post(f"{CONTESTS}/{seeded.contest_id}/rebuild", headers=admin_headers())
    assert resp.status == 200, await resp.text()
    after = await (await client.get(board_url)).json()
    assert after == before
    stats_after = await (await client.get(stats_url, headers=admin_headers())).json()
    for key in ("participants", "attempts_finished"):
        assert stats_after[key] == stats_before[key], key
    await assert_error(await client.post(f"{CONTESTS}/nope/rebuild", headers=admin_headers()), 404, "not_found")


async def _layout(redis: Any, cid: str) -> dict[str, Any]:
    """Every board, rollup, member and name key of a contest as Redis holds it: zsets with their
    scores, hashes with their fields (the review evidence aside: the database does not keep it), and
    for each key whether and when it expires."""
    out: dict[str, Any] = {}
    pattern = keys.every_key_under(keys.contest_prefix(cid))
    async for raw in redis.scan_iter(match=pattern):
        name = raw.decode()
        rest = name[len(keys.contest_prefix(cid)):]
        if rest.startswith((keys.SUFFIX_ATTEMPT, keys.SUFFIX_TIMELINE)) or rest in (
                keys.SUFFIX_EVENTS, keys.SUFFIX_STATS, keys.SUFFIX_QSTATS, keys.SUFFIX_DEADLINES):
            continue  # restored from the record in their own ways (test_durability checks them)
        kind = (await redis.type(raw)).decode()
        if kind == "zset":
            value: Any = await redis.zrange(raw, 0, -1, withscores=True)
        else:
            value = {k: v for k, v in (await redis.hgetall(raw)).items()
                     if k not in (keys.USER_IPS.encode(), keys.USER_DEVICES.encode())}
        out[name] = (kind, value, int(await redis.execute_command("PEXPIRETIME", raw)))
    return out


async def test_rebuild_restores_the_exact_key_layout(client: TestClient) -> None:
    """quiz rebuild writes what the live scripts wrote, key for key (issue 18's layout: no board of
    the lone root, daily boards with their expiry, the expiry hash, the member hashes)."""
    seeded = await seed_contest(client)
    for name in ("张三", "李四", "王五"):
        user = await seeded.register(name=name)
        await play_one(client, user["headers"], seeded.contest_id)
    await wait_flushed(client)
    redis = aioredis.Redis.from_url(client.server.app[SETTINGS].redis_url)
    try:
        before = await _layout(redis, seeded.contest_id)
        assert any(kind == "zset" and expires > 0 for kind, _, expires in before.values())  # daily boards
        assert keys.daily_expiry(seeded.contest_id) in before
        resp = await client.post(f"{CONTESTS}/{seeded.contest_id}/rebuild", headers=admin_headers())
        assert resp.status == 200, await resp.text()
        after = await _layout(redis, seeded.contest_id)
    finally:
        await redis.aclose()
    assert sorted(after) == sorted(before)
    for name, value in before.items():
        assert after[name] == value, name


async def test_export_results_carry_registered_name(client: TestClient) -> None:
    """Registrations must reach durable storage: the results export names the player."""
    seeded = await seed_contest(client)
    user = await seeded.register(name="赵六")
    await play_one(client, user["headers"], seeded.contest_id)
    await wait_flushed(client)
    rows = await read_csv(await client.get(f"{CONTESTS}/{seeded.contest_id}/export",
                                           params={"what": "results"}, headers=admin_headers()))
    assert len(rows) == 2
    assert rows[1][1] == user["user_id"] and rows[1][2] == "赵六", rows
