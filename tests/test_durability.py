"""Durability end to end, on SQLite and PostgreSQL: kill -9 of `quiz serve` under load, a database
outage through the app, Redis FLUSHALL then rebuild, exports against what was answered, and the
`quiz flush`, `quiz rebuild`, `quiz export` commands."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import CATALOG, STORAGE
from contest.embedded_redis import EmbeddedValkey, free_port
from contest.settings import Settings
from contest.web.app import create_app
from contest.workers.flusher import GROUP
from leaderboard import keys
from tests.fixtures.app import ADMIN, SAMPLE, LaneTestServer, admin_headers, make_settings
from tests.fixtures.play import (
    Player,
    answer,
    finish,
    register,
    seed_custom,
    start,
    submit_scored,
)
from tests.fixtures.postgres import PgServer, start_postgres, stop_postgres

VA, VB, TUANJIE, WANGJIA = "360302002001", "360302002002", "360302001001", "360101001001"
TOWN = "360302002"
_dbs = itertools.count(1)


def _create_pg_database(server: PgServer) -> str:
    name = f"quiz_dur{os.getpid()}_{next(_dbs)}"
    subprocess.run([str(server.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
                    name], check=True, capture_output=True, timeout=30)
    return server.admin_url(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'quiz.db'}"
    return _create_pg_database(request.getfixturevalue("pg_server"))


async def app_client(settings: Settings) -> TestClient:
    client = TestClient(LaneTestServer(create_app(settings)))
    await client.start_server()
    return client


async def flushed_settings(redis_url: str, data_dir: Path, **overrides: Any) -> Settings:
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    return make_settings(redis_url, data_dir, **overrides)


async def wait_backlog_zero(get: Any, limit_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            resp = await get("/readyz")
            body = await resp.json()
            if resp.status == 200 and body.get("backlog") == 0:
                return body
        assert time.monotonic() < deadline, "the flusher backlog never drained"
        await asyncio.sleep(0.05)


def parse_csv(raw: bytes) -> list[dict[str, str]]:
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(raw[3:].decode())))


def parse_xlsx(raw: bytes) -> list[dict[str, Any]]:
    book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    book.close()
    header = list(rows[0])
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def norm(choice: Any) -> str:
    return "".join(sorted(choice)) if isinstance(choice, list) else choice


# ---- kill -9 -----------------------------------------------------------------------------------
class QuizServer:
    """`quiz serve` as a child process, on a loopback port."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-m", "contest.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(self.url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            await asyncio.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def aof_valkey(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    """A Valkey of this test's own, with the AOF on (appendfsync everysec), as in production."""
    server = EmbeddedValkey(tmp_path / "valkey", appendonly=True).start()
    yield server
    server.stop()


@pytest.mark.slow
async def test_kill9_mid_load_loses_no_acknowledged_answer(
    aof_valkey: EmbeddedValkey, database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "QUIZ_REDIS_URL": aof_valkey.url, "QUIZ_DATABASE_URL": database_url,
           "QUIZ_DATA_DIR": str(tmp_path / "data"), "QUIZ_ADMIN_TOKEN": ADMIN, "QUIZ_SECRET": "kill9-secret",
           "QUIZ_MIN_ANSWER_MS": "0", "QUIZ_RATE_LIMITS": "0", "QUIZ_FLUSH_INTERVAL_MS": "20",
           "QUIZ_LOG_LEVEL": "WARNING"}
    server = QuizServer(env, free_port(), tmp_path / "serve.log")
    h = admin_headers()
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await server.start(session)
        try:
            base = server.url
            async with session.post(base + "/api/v1/admin/orgs/import", data=(SAMPLE / "orgs.csv").read_bytes(),
                                    headers={**h, "Content-Type": "text/csv"}) as resp:
                assert resp.status == 200
            async with session.post(base + "/api/v1/admin/questions/import", headers=h,
                                    data=(SAMPLE / "questions.json").read_bytes()) as resp:
                assert resp.status == 200
            contest = orjson.loads((SAMPLE / "contest.json").read_bytes())
            now = int(time.time() * 1000)
            contest.update(contest_id="k9", starts_at=now - 60_000, ends_at=now + 3_600_000, attempts_per_day=0)
            async with session.post(base + "/api/v1/admin/contests", json=contest, headers=h) as resp:
                assert resp.status == 201, await resp.text()
            async with session.post(base + "/api/v1/admin/contests/k9/publish", headers=h) as resp:
                assert resp.status == 200
            tokens = []
            for n in range(24):
                async with session.post(base + "/api/v1/auth/register", json={
                        "name": f"选手{n}", "phone": f"1880000{n:04d}", "org_id": VA}) as resp:
                    assert resp.status == 201
                    tokens.append((await resp.json())["token"])
            acked: dict[tuple[str, int], str] = {}
            finished: dict[str, int] = {}

            async def player(token: str) -> None:
                auth = {"Authorization": f"Bearer {token}"}
                while True:
                    async with session.post(base + "/api/v1/contests/k9/attempts", headers=auth) as resp:
                        assert resp.status in (200, 201), await resp.text()
                        attempt = await resp.json()
                    aid = attempt["attempt_id"]
                    for q in attempt["questions"]:
                        keys_ = [o["key"] for o in q["options"]]
                        pick = keys_[(len(acked) + q["index"]) % len(keys_)]
                        choice: Any = [pick] if q["type"] == "multiple" else pick
                        async with session.post(f"{base}/api/v1/attempts/{aid}/answers", headers=auth,
                                                json={"index": q["index"], "choice": choice}) as resp:
                            if resp.status == 200:
                                acked[(aid, q["index"])] = norm(choice)
                            else:
                                assert resp.status == 409, await resp.text()  # answered before a resume
                    async with session.post(f"{base}/api/v1/attempts/{aid}/finish", headers=auth) as resp:
                        assert resp.status == 200, await resp.text()
                        finished[aid] = (await resp.json())["score"]

            tasks = [asyncio.create_task(player(t)) for t in tokens]
            await asyncio.sleep(1.0)
            server.kill9()  # mid-load: requests in flight, batches between read and ack
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(o, aiohttp.ClientError | asyncio.TimeoutError) for o in outcomes), outcomes
            assert len(acked) > 200, len(acked)
            await server.start(session)

            async def get(path: str) -> Any:
                return await session.get(base + path)

            await wait_backlog_zero(get)
            async with session.get(base + "/api/v1/admin/contests/k9/export", params={"what": "answers"},
                                   headers=h) as resp:
                assert resp.status == 200
                rows = parse_csv(await resp.read())
            stored = Counter((r["attempt_id"], int(r["index"])) for r in rows)
            assert max(stored.values()) == 1  # none stored twice
            choices = {(r["attempt_id"], int(r["index"])): r["choice"] for r in rows}
            missing = [k for k in acked if k not in choices]
            assert not missing, f"{len(missing)} acknowledged answers lost, e.g. {missing[:3]}"
            assert all(choices[k] == v for k, v in acked.items())
            async with session.get(base + "/api/v1/admin/contests/k9/export", headers=h) as resp:
                results = parse_csv(await resp.read())
            by_attempt = Counter(r["attempt_id"] for r in results)
            assert all(by_attempt[aid] == 1 for aid in finished)
            scores = {r["attempt_id"]: int(r["score"]) for r in results}
            assert all(scores[aid] == score for aid, score in finished.items())
            # nothing is left pending on the killed process's consumer (the restarted flusher took its
            # entries over at once, not after claim_idle_ms: the backlog above drained well within that)
            redis = aioredis.Redis.from_url(aof_valkey.url)
            try:
                consumers = await redis.xinfo_consumers(keys.events("k9"), GROUP)
                assert all(int(c["pending"]) == 0 for c in consumers), consumers
            finally:
                await redis.aclose()
        finally:
            server.stop()


# ---- database outage through the app --------------------------------------------------------------
@pytest.mark.postgres
async def test_postgres_outage_through_the_app(redis_url: str, pg_server: PgServer, tmp_path: Path) -> None:
    url = _create_pg_database(pg_server)
    client = await app_client(await flushed_settings(redis_url, tmp_path, database_url=url, rate_limits=False))
    try:
        cid = await seed_custom(client)
        before = [await submit_scored(client, await register(client), cid, right=3) for _ in range(2)]
        await wait_backlog_zero(client.get)
        stop_postgres(pg_server)
        try:
            # the participant path keeps working: register, start, answer, finish
            during_players = [await register(client, org_id=VB) for _ in range(3)]
            during = [await submit_scored(client, p, cid, right=4) for p in during_players]
            resp = await client.get("/readyz")
            body = await resp.json()
            assert resp.status == 503 and body["database"] != "ok" and body["redis"] == "ok"
            assert body["backlog"] >= 3 * (6 + 2) + 3  # three users, three starts, 18 answers, three finishes
            assert body["error"]["code"] == "unavailable"
            resp = await client.get(f"/api/v1/admin/contests/{cid}/export", headers=admin_headers())
            assert resp.status == 503 and (await resp.json())["error"]["code"] == "unavailable"
        finally:
            start_postgres(pg_server)
        await wait_backlog_zero(client.get)
        resp = await client.get(f"/api/v1/admin/contests/{cid}/export", headers=admin_headers())
        results = parse_csv(await resp.read())
        assert sorted(r["attempt_id"] for r in results) == sorted(r["attempt_id"] for r in before + during)
        names = {r["user_id"]: r["name"] for r in results}
        assert all(names[p.user_id] == p.name for p in during_players)
        resp = await client.get(f"/api/v1/admin/contests/{cid}/export", params={"what": "answers"},
                                headers=admin_headers())
        assert len(parse_csv(await resp.read())) == 5 * 6
    finally:
        await client.close()


# ---- FLUSHALL, then rebuild ---------------------------------------------------------------------------
async def _snapshot(client: TestClient, cid: str, players: list[Player]) -> dict[str, Any]:
    async def get(url: str, **params: Any) -> Any:
        resp = await client.get(url, params=params, headers=admin_headers())
        assert resp.status == 200, await resp.text()
        return await resp.json()

    base = f"/api/v1/contests/{cid}"
    snap: dict[str, Any] = {}
    for board in ("total", "daily"):
        for org in ("", "360000", TOWN, VA, VB, TUANJIE, WANGJIA):
            params = {"board": board, "limit": 200, **({"org_id": org} if org else {})}
            snap[f"board:{board}:{org}"] = await get(f"{base}/leaderboard", **params)
        for player in players:
            resp = await client.get(f"{base}/leaderboard/me", params={"board": board, "around": 3},
                                    headers=player.headers)
            snap[f"me:{board}:{player.user_id}"] = await resp.json()
    for sort in ("participation_rate", "participants", "avg_score", "total_score"):
        snap[f"orgs:town:{sort}"] = await get(f"{base}/orgs", parent_id=TOWN, sort=sort)
        snap[f"orgs:root:{sort}"] = await get(f"{base}/orgs", sort=sort)
        for level in (2, 4, 5):
            snap[f"orgs:level{level}:{sort}"] = await get(f"{base}/orgs", level=level, sort=sort, limit=40)
    for org in ("", TOWN, VA):
        stats = await get(f"/api/v1/admin/contests/{cid}/stats", **({"org_id": org} if org else {}))
        stats.pop("answers_per_s")
        snap[f"stats:{org}"] = stats
    return snap


@pytest.mark.parametrize("ranking", ["best", "sum"])
async def test_flushall_then_rebuild_restores_everything(
    redis_url: str, tmp_path: Path, ranking: str
) -> None:
    client = await app_client(await flushed_settings(redis_url, tmp_path, rate_limits=False))
    try:
        cid = await seed_custom(client, ranking=ranking, counted_per_day=2)
        players = [await register(client, org_id=org, name=f"用户{n}")
                   for n, org in enumerate((VA, VA, VB, TUANJIE, WANGJIA))]
        for player, rights in zip(players, ((3, 5, 6), (2,), (4, 1), (6,), (0, 2)), strict=True):
            for r in rights:
                await submit_scored(client, player, cid, r)
        # an unfinished attempt with two answers survives the loss too
        late = await register(client, org_id=VB, name="迟到")
        _, open_attempt = await start(client, late, cid)
        for q in open_attempt["questions"][:2]:
            assert (await answer(client, late, open_attempt["attempt_id"], q["index"], "B"))[0] == 200
        await wait_backlog_zero(client.get)
        before = await _snapshot(client, cid, players + [late])
        assert before["board:total:"]["total"] == 5 and before["stats:"]["attempts_finished"] == 9
        redis = aioredis.Redis.from_url(redis_url)
        await redis.flushall()
        await redis.aclose()
        await client.server.app[CATALOG].refresh()  # what its 1 s refresh does anyway: contests forgotten
        assert (await client.get(f"/api/v1/contests/{cid}")).status == 404
        resp = await client.post(f"/api/v1/admin/contests/{cid}/rebuild", headers=admin_headers())
        report = await resp.json()
        assert resp.status == 200, report
        assert report["finished"] == 9 and report["open"] == 1
        after = await _snapshot(client, cid, players + [late])
        assert after.keys() == before.keys()
        for key in before:
            assert after[key] == before[key], key
        # the contest plays on: the open attempt resumes with its answers, and new events reach the database
        status, resumed = await start(client, late, cid)
        assert status == 200 and resumed["attempt_id"] == open_attempt["attempt_id"]
        assert [a["index"] for a in resumed["answered"]] == [0, 1] and resumed["score"] == 20
        assert (await answer(client, late, resumed["attempt_id"], 2, "B"))[0] == 200
        status, result = await finish(client, late, resumed["attempt_id"])
        assert status == 200 and result["score"] == 30
        fresh = await register(client, org_id=VB, name="新来")
        assert fresh.user_id not in {p.user_id for p in players + [late]}  # the id counter came back
        resp = await client.post("/api/v1/auth/register", json={"name": "冒名", "phone": players[0].phone,
                                                                 "org_id": VA})
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_registered"
        await submit_scored(client, fresh, cid, 1)
        await wait_backlog_zero(client.get)
        rows = [r async for r in client.server.app[STORAGE].load_attempts(cid)]
        assert sum(1 for r in rows if r["finished_at"] is not None) == 11
    finally:
        await client.close()


# ---- exports against what was answered ----------------------------------------------------------------
async def test_exports_match_what_was_answered(redis_url: str, tmp_path: Path, database_url: str) -> None:
    client = await app_client(await flushed_settings(redis_url, tmp_path, database_url=database_url,
                                                     rate_limits=False))
    try:
        paper = {"draw": [{"category": "T单", "count": 3}, {"category": "T多", "count": 2}],
                 "shuffle_questions": True, "shuffle_options": True}
        cid = await seed_custom(client, paper=paper)
        answered: dict[tuple[str, int], dict[str, Any]] = {}
        results: dict[str, dict[str, Any]] = {}
        owners: dict[str, Player] = {}
        for n, org in enumerate((VA, VB, VB, TUANJIE, WANGJIA)):
            player = await register(client, org_id=org, name=f"=用户{n}")
            _, attempt = await start(client, player, cid)
            aid = attempt["attempt_id"]
            owners[aid] = player
            for q in attempt["questions"][: 3 + n % 3]:
                option = q["options"][(n + q["index"]) % len(q["options"])]["key"]
                choice = [option] if q["type"] == "multiple" else option
                status, body = await answer(client, player, aid, q["index"], choice)
                assert status == 200
                answered[(aid, q["index"])] = {"choice": option, "correct": body["correct"],
                                               "points": body["points_awarded"]}
            status, result = await finish(client, player, aid)
            assert status == 200
            results[aid] = result
        await wait_backlog_zero(client.get)
        url = f"/api/v1/admin/contests/{cid}/export"

        async def export(**params: Any) -> bytes:
            resp = await client.get(url, params=params, headers=admin_headers())
            assert resp.status == 200, await resp.text()
            return await resp.read()

        for org, members in ((None, set(owners.values())), (TOWN, {p for p in owners.values() if p.org_id in (VA, VB)}),
                             (VB, {p for p in owners.values() if p.org_id == VB})):
            params = {"org_id": org} if org else {}
            uids = {p.user_id for p in members}
            want = {k: v for k, v in answered.items() if owners[k[0]].user_id in uids}
            rows = parse_csv(await export(what="answers", **params))
            got = {(r["attempt_id"], int(r["index"])): r for r in rows}
            assert len(rows) == len(got) == len(want)
            assert got.keys() == want.keys(), org
            for k, row in got.items():
                assert row["user_id"] == owners[k[0]].user_id and row["choice"] == want[k]["choice"]
                assert row["correct"] == str(int(want[k]["correct"]))
                assert int(row["points_awarded"]) == want[k]["points"]
                assert row["question_id"].startswith(("TS", "TM")) and int(row["answered_at"]) > 0
            wanted_results = {aid: r for aid, r in results.items() if owners[aid].user_id in uids}
            for fmt, table in (("csv", parse_csv(await export(what="results", **params))),
                               ("xlsx", parse_xlsx(await export(what="results", format="xlsx", **params)))):
                assert sorted(str(r["attempt_id"]) for r in table) == sorted(wanted_results), (org, fmt)
                for row in table:
                    res = wanted_results[str(row["attempt_id"])]
                    owner = owners[str(row["attempt_id"])]
                    # the name is written as text, never run as a formula (CSV escapes the "=")
                    assert row["name"] == (owner.name if fmt == "xlsx" else "'" + owner.name)
                    assert str(row["user_id"]) == owner.user_id and str(row["org_id"]) == owner.org_id
                    for col in ("score", "correct_count", "question_count", "duration_ms", "started_at",
                                "finished_at"):
                        assert int(row[col]) == res[col], (fmt, col)
            xlsx_answers = parse_xlsx(await export(what="answers", format="xlsx", **params))
            assert {(r["attempt_id"], r["index"]) for r in xlsx_answers} == want.keys()
    finally:
        await client.close()


# ---- the CLI ---------------------------------------------------------------------------------------------
def quiz(env: dict[str, str], *args: str, code: int = 0) -> str:
    proc = subprocess.run([sys.executable, "-m", "contest.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


async def test_cli_flush_rebuild_export(redis_url: str, tmp_path: Path) -> None:
    db = tmp_path / "quiz.db"
    client = await app_client(await flushed_settings(redis_url, tmp_path, run_flusher=False, rate_limits=False))
    try:
        cid = await seed_custom(client)
        players = [await register(client, org_id=org) for org in (VA, VB, WANGJIA)]
        for n, player in enumerate(players):
            await submit_scored(client, player, cid, right=n + 2)
        body = await (await client.get("/readyz")).json()
        assert body["backlog"] is None  # no flusher in this app: `quiz flush` does the work
        env = {**os.environ, "QUIZ_REDIS_URL": redis_url, "QUIZ_DATABASE_URL": f"sqlite:///{db}",
               "QUIZ_DATA_DIR": str(tmp_path), "QUIZ_LOG_LEVEL": "WARNING"}
        out = await asyncio.to_thread(quiz, env, "flush", "--once")
        assert out.strip() == "flushed 27 entries; backlog 0"  # 3 users, 3 starts, 18 answers, 3 finishes
        counts = await client.server.app[STORAGE].count_rows(cid)
        assert counts == {"users": 3, "attempts": 3, "finished": 3, "answers": 18}
        board_url = f"/api/v1/contests/{cid}/leaderboard"
        before = await (await client.get(board_url)).json()
        redis = aioredis.Redis.from_url(redis_url)
        await redis.flushall()
        await redis.aclose()
        report = orjson.loads((await asyncio.to_thread(quiz, env, "rebuild", cid)).strip().splitlines()[-1])
        assert report["finished"] == 3 and report["contest_id"] == cid
        for _ in range(100):  # the app's catalog follows the restored snapshot within a second
            resp = await client.get(board_url)
            if resp.status == 200 and (await resp.json()) == before:
                break
            await asyncio.sleep(0.05)
        assert await (await client.get(board_url)).json() == before
        out_csv = tmp_path / "answers.csv"
        await asyncio.to_thread(quiz, env, "export", cid, "--what", "answers", "--out", str(out_csv))
        assert len(parse_csv(out_csv.read_bytes())) == 18
        out_xlsx = tmp_path / "results.xlsx"
        await asyncio.to_thread(quiz, env, "export", cid, "--format", "xlsx", "--org", VB, "--out", str(out_xlsx))
        rows = parse_xlsx(out_xlsx.read_bytes())
        assert [(str(r["user_id"]), r["score"]) for r in rows] == [(players[1].user_id, 30)]
        out = await asyncio.to_thread(quiz, env, "export", cid, "--org", "nope", code=2)
        assert "no org 'nope'" in out and "Traceback" not in out
    finally:
        await client.close()
