"""The front door (contest/web/front_door.py) against clients on real networks: bodies in pieces, bodies
that never complete, clients that trickle or idle, heads over aiohttp's limits.

Every other test's client already goes through ``FragmentingProxy`` (tests/fixtures/app.py);
these speak raw HTTP to the server's own port, so each case is exactly the one named.
"""

from __future__ import annotations

import ast
import asyncio
import io
import logging
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from contest.appkeys import CATALOG, METRICS
from tests.fixtures.app import admin_headers, seed_contest
from tests.fixtures.proxy import FragmentingProxy
from tests.fixtures.waiting import until

CONTEST = Path(__file__).resolve().parents[1] / "contest"


async def _register_raw(port: int, phone: str, *, gap_s: float, promise_extra: int = 0) -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter]:
    body = orjson.dumps({"name": "李四", "phone": phone, "org_id": "360302002001"})
    head = (f"POST /api/v1/auth/register HTTP/1.1\r\nHost: quiz\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) + promise_extra}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    await asyncio.sleep(gap_s)  # the body follows in a later segment, as from a phone
    writer.write(body)
    await writer.drain()
    return reader, writer


async def _status_of(reader: asyncio.StreamReader) -> int:
    line = await asyncio.wait_for(reader.readline(), 10)
    return int(line.split()[1])


@pytest.mark.parametrize("lane", [True, False])
async def test_a_body_after_its_head_is_read_whole(app_factory: Callable[..., Any], lane: bool) -> None:
    """The bug phones hit: head, then the body 50 ms later, was answered 400 invalid_json."""
    async with app_factory(answer_lane=lane) as client:
        await seed_contest(client)
        reader, writer = await _register_raw(client.port, "13800000001", gap_s=0.05)
        assert await _status_of(reader) == 201
        writer.close()


async def test_a_body_shorter_than_promised_gets_no_answer_and_changes_nothing(
        app_factory: Callable[..., Any]) -> None:
    async with app_factory(body_timeout_s=0.5, body_min_rate=1 << 30) as client:
        await seed_contest(client)
        app = client.server.app
        reader, writer = await _register_raw(client.port, "13800000002", gap_s=0.01, promise_extra=20)
        # no reply at all, then the connection is closed by the body clock
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        assert app[METRICS].connections_closed["body_timeout"] == 1
        resp = await client.post("/api/v1/auth/register",
                                 json={"name": "李四", "phone": "13800000002", "org_id": "360302002001"})
        assert resp.status == 201  # the phone was not registered by the incomplete request


async def test_a_client_stalled_mid_body_is_cut_off(app_factory: Callable[..., Any]) -> None:
    """Through a proxy that forwards the head and a few body bytes and then holds the rest."""
    async with app_factory(body_timeout_s=0.5, body_min_rate=1 << 30) as client:
        await seed_contest(client)
        proxy = FragmentingProxy("127.0.0.1", client.port, stall_after=40)
        port = await proxy.start()
        try:
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.ClientError):
                    await session.post(f"http://127.0.0.1:{port}/api/v1/auth/register",
                                       json={"name": "王五", "phone": "13800000003", "org_id": "360302002001",
                                             "pad": "x" * 400},
                                       timeout=aiohttp.ClientTimeout(total=10))
        finally:
            await proxy.close()
        assert client.server.app[METRICS].connections_closed["body_timeout"] == 1


async def test_a_client_trickling_its_head_is_cut_off_and_logged(app_factory: Callable[..., Any],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    async with app_factory(header_timeout_s=0.6) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        raw = b"GET /healthz HTTP/1.1\r\nHost: quiz\r\nUser-Agent: " + b"s" * 200 + b"\r\n\r\n"
        caplog.set_level(logging.WARNING, "contest.web.front_door")
        closed = False
        for byte in raw:  # one byte every 50 ms: 11 s for the whole head
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                closed = True
                break
            if reader.at_eof() or (await _eof_within(reader, 0.05)):
                closed = True
                break
        assert closed, "the trickling client was never cut off"
        writer.close()
        assert client.server.app[METRICS].connections_closed["header_timeout"] == 1
        assert any("slow client" in r.getMessage() for r in caplog.records)
        resp = await client.get("/healthz")  # everyone else is served
        assert resp.status == 200


async def _eof_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), seconds) == b""
    except TimeoutError:
        return False


async def test_idle_keep_alive_connections_make_room_for_new_clients(app_factory: Callable[..., Any]) -> None:
    """5,000 idle phones at a lower scale: 40 idle connections on a limit of 10."""
    async with app_factory(max_connections=10) as client:
        idle = []
        for _ in range(40):
            reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: quiz\r\n\r\n")
            assert await _status_of(reader) == 200
            idle.append((reader, writer))
        metrics = client.server.app[METRICS]
        await until(lambda: metrics.connections_open <= 10, what="idle connections evicted")
        assert metrics.connections_closed["evicted"] >= 30
        resp = await client.get("/healthz")
        assert resp.status == 200
        for _, writer in idle:
            writer.close()


async def test_idle_connections_close_after_the_keep_alive_time(app_factory: Callable[..., Any]) -> None:
    async with app_factory(keepalive_timeout_s=0.3) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: quiz\r\n\r\n")
        assert await _status_of(reader) == 200
        await until(lambda: _eof_within(reader, 0.2), within=5, what="the idle connection closed")
        writer.close()
        assert client.server.app[METRICS].connections_closed["idle"] == 1


@pytest.mark.parametrize(("raw", "message"), [
    (b"GET /healthz HTTP/1.1\r\n\r\n", "Host"),
    (b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: q\r\n\r\n", "too long"),
    (b"GET /healthz HTTP/1.1\r\nHost: q\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(130)) + b"\r\n",
     "Too many headers"),
    (b"GET /healthz HTTP/1.1\r\nHost: q\r\nX-Big: " + b"b" * 8200 + b"\r\n\r\n", "too long"),
    (b"POST /api/v1/auth/register HTTP/1.1\r\nHost: q\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
     "malformed request"),
])
async def test_heads_over_aiohttps_limits_get_the_json_error_and_a_close(client: TestClient, raw: bytes,
                                                                         message: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(raw)
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"Connection: close" in head and b"application/json" in head
    error = orjson.loads(body)["error"]
    assert error["code"] == "bad_request" and message in error["message"], error


async def test_a_big_import_split_into_segments_arrives_whole(client: TestClient) -> None:
    """A 3 MB raw import used to be cut at what had arrived (~740 KB)."""
    h = admin_headers()
    lines = ["org_id,parent_id,name,level,members", "900000,,测试省,1,0"]
    lines += [f"9{i:05d}01,900000,第{i}市（试点）,2,{i}" for i in range(1, 60_000)]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > 2_500_000
    resp = await client.post("/api/v1/admin/orgs/import", data=io.BytesIO(data),
                             headers={**h, "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["imported"] == 60_000
    catalog = client.server.app[CATALOG]
    assert catalog.orgs["90000101"].name == "第1市（试点）"


def test_nothing_in_contest_names_an_underscored_aiohttp_attribute() -> None:
    """aiohttp's private names change in patch releases; the service uses its public API only.

    An underscored name of aiohttp's server classes that the project does not define itself must
    not appear as an attribute anywhere in contest/, nor be imported from aiohttp.
    """
    from aiohttp import web_protocol

    private: set[str] = set()
    for cls in (web.Server, web.AppRunner, web.BaseRequest, web.StreamResponse, web.Application,
                web_protocol.RequestHandler, web.BaseSite):
        private |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in CONTEST.rglob("*.py")}
    own: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
    offenders = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in private - own:
                offenders.append(f"{path.relative_to(CONTEST)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiohttp"):
                offenders += [f"{path.relative_to(CONTEST)}:{node.lineno} import {a.name}"
                              for a in node.names if a.name.startswith("_")]
    assert not offenders, offenders
    # the error shape for malformed HTTP is the front door's own, not a patch of aiohttp's class
    for tree in trees.values():
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Attribute) and node.attr == "handle_error"), "patched handle_error"


async def test_a_protocol_switch_is_answered_and_the_connection_closed(client: TestClient) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: q\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                 b"\x81\x85 not http at all")
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert data.startswith(b"HTTP/1.1 "), data[:80]
    assert data.count(b"HTTP/1.1 ") == 1  # the bytes after the head were not taken for a request


async def test_pipelined_requests_of_every_kind_are_answered_in_order(client: TestClient) -> None:
    """GETs, a 404, a chunked POST and a plain one in one write: one reply each, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    body = orjson.dumps({"name": "赵六", "phone": "bad", "org_id": "x"})
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n"
                 b"GET /nope HTTP/1.1\r\nHost: q\r\n\r\n"
                 b"POST /api/v1/auth/register HTTP/1.1\r\nHost: q\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: application/json\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
                 b"POST /api/v1/auth/register HTTP/1.1\r\nHost: q\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body +
                 b"GET /healthz HTTP/1.1\r\nHost: q\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
    assert statuses == [200, 404, 400, 400, 200], statuses


async def test_a_client_that_never_reads_its_responses_is_cut_off(app_factory: Callable[..., Any]) -> None:
    """Requests pipelined for a 1 MB file, no reply read: once the socket buffers are full the
    door stops reading, and after the send timeout closes the connection."""
    async with app_factory(send_timeout_s=0.5) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a phone that stopped reading
        request = b"GET /static/vendor/echarts/echarts.min.js HTTP/1.1\r\nHost: q\r\nAccept-Encoding: identity\r\n\r\n"
        writer.write(request * 40)
        metrics = client.server.app[METRICS]
        await until(lambda: metrics.connections_closed["send_timeout"] == 1, within=15,
                    what="the non-reading client cut off")
        writer.close()
        resp = await client.get("/healthz")
        assert resp.status == 200


async def test_every_body_route_answers_alike_through_a_phone_network_and_directly(client: TestClient) -> None:
    """Every POST, PUT and PATCH of the route table, with a body of several segments: through the
    fragmenting proxy (head, pause, body in pieces) and straight to the server, the same status
    and error code, never ``invalid_json`` for a valid JSON body, never a 5xx."""
    from contest.web.routes import ROUTES

    seeded = await seed_contest(client)
    user = await seeded.register()
    resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts", headers=user["headers"])
    aid = (await resp.json())["attempt_id"]
    params = {"cid": seeded.contest_id, "aid": aid, "sid": "nobody", "qid": "nope", "lid": "nope"}
    body = orjson.dumps({"pad": "白" * 3000, "note": "（　）"})  # ~9 KB: several segments, a split character
    direct = f"http://127.0.0.1:{client.port}"
    checked = 0
    async with aiohttp.ClientSession() as session:
        for route in ROUTES:
            if route.method not in ("POST", "PUT", "PATCH") or route.body is None:
                continue
            path = route.path.format(**params)
            headers = {"Content-Type": "application/json",
                       **(user["headers"] if "participant" in route.auth else admin_headers())}
            replies = []
            for send in (client.request, lambda m, p, **kw: session.request(m, direct + p, **kw)):
                async with send(route.method, path, data=body, headers=headers) as reply:
                    payload = orjson.loads(await reply.read() or b"{}")
                    replies.append((reply.status, payload.get("error", {}).get("code")))
            through_proxy, straight = replies
            assert through_proxy == straight, (route.method, route.path, replies)
            assert through_proxy[0] < 500 and through_proxy[1] != "invalid_json", (route.method, route.path, replies)
            checked += 1
    assert checked >= 15
