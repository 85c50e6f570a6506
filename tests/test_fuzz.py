"""Fuzzing: schemathesis over every operation of /api/openapi.json against a real server, and
hypothesis over the importers and the score encoding.

The server runs in a thread with its own event loop (schemathesis calls are synchronous), on the
session's Valkey and a SQLite file; a seeded contest, a participant with an open attempt and the
admin token make the authenticated operations reachable.  Bounded: a few examples per operation.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from contest.orgtree import parse_orgs
from contest.web.app import create_app
from contest.web.openapi import build_spec
from contest.web.routes import ROUTES
from leaderboard.encoding import SCORE_MAX, decode, encode
from leaderboard.scripts import _COMMON
from question_bank import ImportFormatError, parse_questions
from tests.fixtures.app import ADMIN, SAMPLE, make_settings

schema = schemathesis.openapi.from_dict(build_spec(ROUTES)).exclude(path_regex=r"/live$")  # SSE never ends
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class ThreadedServer:
    """The real app on 127.0.0.1 in a thread of its own (its own loop, its own Redis clients)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-server", daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _seed(url: str) -> dict[str, str]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    s = requests.Session()
    assert s.post(f"{url}/api/v1/admin/orgs/import", data=(SAMPLE / "orgs.csv").read_bytes(),
                  headers={**admin, "Content-Type": "text/csv"}).status_code == 200
    assert s.post(f"{url}/api/v1/admin/questions/import", data=(SAMPLE / "questions.json").read_bytes(),
                  headers={**admin, "Content-Type": "application/json"}).status_code == 200
    body = orjson.loads((SAMPLE / "contest.json").read_bytes())
    now = int(time.time() * 1000)
    body.update(contest_id="demo", starts_at=now - 60_000, ends_at=now + 3_600_000)
    assert s.post(f"{url}/api/v1/admin/contests", json=body, headers=admin).status_code == 201
    assert s.post(f"{url}/api/v1/admin/contests/demo/publish", headers=admin).status_code == 200
    reg = s.post(f"{url}/api/v1/auth/register", json={"name": "模糊", "phone": "13700000000",
                                                      "org_id": "360302002001"}).json()
    attempt = s.post(f"{url}/api/v1/contests/demo/attempts",
                     headers={"Authorization": f"Bearer {reg['token']}"}).json()
    return {"participant": reg["token"], "attempt_id": attempt["attempt_id"]}


@pytest.fixture(scope="module")
def fuzz_server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    # rate limits off: the fuzzer is one client hammering one attempt on purpose
    app = create_app(make_settings(redis_url, data_dir, rate_limits=False))
    with ThreadedServer(app) as server:
        yield {"url": server.url, **_seed(server.url)}


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_never_5xx_and_matches_the_spec(case: Any, fuzz_server: dict[str, str]) -> None:
    if case.path_parameters:
        # real ids half the time, so handlers get past the lookup; random ones exercise the 404s
        if "cid" in case.path_parameters and hash(str(case.path_parameters["cid"])) % 2 == 0:
            case.path_parameters["cid"] = "demo"
        if "aid" in case.path_parameters and hash(str(case.path_parameters["aid"])) % 2 == 0:
            case.path_parameters["aid"] = fuzz_server["attempt_id"]
    token = ADMIN if "/admin/" in case.path else fuzz_server["participant"]
    response = case.call(base_url=fuzz_server["url"], headers={"Authorization": f"Bearer {token}"}, timeout=10)
    case.validate_response(response, checks=CHECKS)


# ---- hypothesis: the importers and the score encoding -----------------------------------------------
cells = st.one_of(st.text(max_size=30), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                  st.booleans(), st.none(), st.lists(st.integers(-100, 100), max_size=3))
QUESTION_KEYS = ["id", "type", "stem", "options", "answer", "category", "difficulty", "points", "explanation",
                 "option_a", "option_b"]
ORG_KEYS = ["org_id", "parent_id", "name", "level", "members"]


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.dictionaries(st.sampled_from(QUESTION_KEYS), cells, max_size=9), max_size=8))
def test_question_import_never_crashes_on_json(rows: list[dict[str, Any]]) -> None:
    try:
        result = parse_questions(orjson.dumps(rows), filename="q.json")
    except ImportFormatError:
        return  # a whole-file problem, reported as such
    # every bad row is reported by its number; all or nothing is the caller's rule
    assert all(1 <= e.row <= len(rows) for e in result.errors)
    assert len(result.questions) <= len(rows)
    for q in result.questions:
        assert q.type in ("single", "multiple", "judge") and 2 <= len(q.options) <= 8 and q.answer


@settings(max_examples=150, deadline=None, database=None)
@given(st.text(max_size=400))
def test_question_import_never_crashes_on_csv(text: str) -> None:
    data = ("type,stem,option_a,option_b,answer\n" + text).encode()
    try:
        result = parse_questions(data, filename="q.csv")
    except ImportFormatError:  # the only exception the importer may raise
        pass
    else:
        for error in result.errors:
            assert error.row >= 0 and isinstance(error.message, str)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.dictionaries(st.sampled_from(ORG_KEYS), cells, max_size=5), max_size=10))
def test_org_import_never_crashes(rows: list[dict[str, Any]]) -> None:
    orgs, errors = parse_orgs(orjson.dumps(rows), filename="orgs.json")
    if errors:
        assert orgs == [] or all(e.row >= 0 for e in errors)
    else:
        ids = [o.org_id for o in orgs]
        assert len(ids) == len(set(ids))


@settings(max_examples=60, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_xlsx_import_rejects_garbage_cleanly(data: bytes) -> None:
    with pytest.raises(ImportFormatError):
        parse_questions(b"PK\x03\x04" + data, filename="q.xlsx")


SCORE = st.integers(0, SCORE_MAX)
DURATION = st.integers(0, 2**32 - 1)


@settings(max_examples=300, deadline=None, database=None)
@given(SCORE, DURATION, SCORE, DURATION)
def test_score_encoding_round_trips_and_orders(s1: int, d1: int, s2: int, d2: int) -> None:
    e1, e2 = encode(s1, d1), encode(s2, d2)
    assert e1 == s1 * 2**32 + (2**32 - 1 - d1) and e1 < 2**53
    assert int(float(e1)) == e1  # exact as a double, the type of a sorted-set score
    assert decode(e1) == (s1, d1) and decode(repr(float(e1)).encode()) == (s1, d1)
    # higher score first; on equal scores the shorter duration first; equal pairs tie exactly
    assert (e1 > e2) == ((s1, -d1) > (s2, -d2))
    assert (e1 == e2) == ((s1, d1) == (s2, d2))


_LUA_ENC = _COMMON + "\nreturn num(enc(tonumber(ARGV[1]), tonumber(ARGV[2])))"


@settings(max_examples=80, deadline=None, database=None)
@given(SCORE, st.integers(-10, 2**33))
def test_lua_encoding_equals_python(redis_url: str, score: int, duration: int) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        packed = int(client.eval(_LUA_ENC, 0, score, duration))
    finally:
        client.close()
    assert packed == encode(score, duration)  # out-of-range durations clamp the same way
