"""Input hardening: JSON shape limits, strict types, names kept as written, import limits, export formulas."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile

import openpyxl
import orjson
import pytest
from aiohttp.test_utils import TestClient

from contest.orgtree import parse_orgs
from contest.web.jsonio import MAX_JSON_DEPTH, MAX_JSON_STRING
from question_bank import parse_questions
from tests.fixtures.app import admin_headers, seed_contest
from tests.test_attempts import play
from tests.test_review import drain


async def error_of(resp, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code, body
    return body["error"]


async def test_json_depth_and_string_limits(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    path = f"/api/v1/contests/{seeded.contest_id}/attempts"
    aid = (await (await client.post(path, headers=user["headers"])).json())["attempt_id"]
    url = f"/api/v1/attempts/{aid}/answers"
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    for body in ('{"index": 0, "choice": ' + deep + "}",
                 '{"index": 0, "choice": "A", "x": ' + "[" * 5000 + "]" * 5000 + "}"):
        resp = await client.post(url, data=body, headers={**user["headers"], "Content-Type": "application/json"})
        await error_of(resp, 400, "invalid_json")
    resp = await client.post(url, json={"index": 0, "choice": "A" * (MAX_JSON_STRING + 1)}, headers=user["headers"])
    await error_of(resp, 400, "invalid_json")
    # a shallow, ordinary body is still fine
    resp = await client.post(url, json={"index": 0, "choice": "A", "nested": {"a": [1, [2, [3]]]}},
                             headers=user["headers"])
    assert resp.status in (200, 400)  # 400 only if A is not an option of question 0
    assert (await resp.json()).get("error", {}).get("code") != "invalid_json"


async def test_strict_types_bool_is_not_an_int(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    aid = (await (await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts",
                                    headers=user["headers"])).json())["attempt_id"]
    for index in (True, False, "0", 0.0, None, [0]):
        resp = await client.post(f"/api/v1/attempts/{aid}/answers", json={"index": index, "choice": "A"},
                                 headers=user["headers"])
        error = await error_of(resp, 400, "validation_failed")
        assert "index" in error["details"]["fields"], index
    for choice in (True, 1, {"A": 1}, [], ["A", "A"], ["A", 1], "AB", "Z"):
        resp = await client.post(f"/api/v1/attempts/{aid}/answers", json={"index": 0, "choice": choice},
                                 headers=user["headers"])
        assert resp.status == 400, choice
    contest = {"title": "x", "starts_at": 1, "ends_at": 2, "time_limit_s": True, "ranking": "best",
               "feedback": "end", "paper": {"draw": [{"category": None, "difficulty": None, "count": 1}],
                                             "shuffle_questions": 1}}
    resp = await client.post("/api/v1/admin/contests", json=contest, headers=admin_headers())
    fields = (await error_of(resp, 400, "validation_failed"))["details"]["fields"]
    assert "time_limit_s" in fields and "paper.shuffle_questions" in fields


async def test_names_are_kept_as_written_and_control_characters_refused(client: TestClient) -> None:
    await seed_contest(client)
    body = {"name": "Ｔｏｍ\u3000Ｌｅｅ", "phone": "13912345678", "org_id": "360302002001"}
    resp = await client.post("/api/v1/auth/register", json=body)
    assert resp.status == 201
    me = await (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {(await resp.json())['token']}"}
                                 )).json()
    assert me["name"] == "Ｔｏｍ\u3000Ｌｅｅ"  # NFC only: a name is shown as its owner wrote it (issue 16)
    for bad in ("a\u0000b", "x\u202ey", "\u200b", " "):
        resp = await client.post("/api/v1/auth/register", json={**body, "name": bad, "phone": "13912345679"})
        error = await error_of(resp, 400, "validation_failed")
        assert "name" in error["details"]["fields"], repr(bad)


def _zip_bomb(declared: int) -> bytes:
    """A tiny .xlsx-looking archive that inflates to ``declared`` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(declared >> 20):
                fh.write(chunk)
    return out.getvalue()


async def test_import_limits_zip_bomb_and_cell_length(client: TestClient) -> None:
    h = admin_headers()
    bomb = _zip_bomb(201 << 20)
    assert len(bomb) < 1 << 20
    resp = await client.post("/api/v1/admin/questions/import", data=bomb,
                             headers={**h, "Content-Type": "application/vnd.openxmlformats-officedocument"
                                                            ".spreadsheetml.sheet"})
    error = await error_of(resp, 400, "validation_failed")
    assert "expands" in error["message"]
    long_stem = "题" * 20_000
    data = f"type,stem,option_a,option_b,answer\nsingle,{long_stem},a,b,A\n".encode()
    resp = await client.post("/api/v1/admin/questions/import", data=data, headers={**h, "Content-Type": "text/csv"})
    error = await error_of(resp, 400, "validation_failed")
    assert error["details"]["errors"][0]["column"] == "stem"
    resp = await client.post("/api/v1/admin/questions/import", data=b"\xff\xfe\x00garbage",
                             headers={**h, "Content-Type": "application/vnd.openxmlformats-officedocument"
                                                            ".spreadsheetml.sheet"})
    await error_of(resp, 400, "validation_failed")


async def test_exports_neutralize_formulas_end_to_end(client: TestClient) -> None:
    seeded = await seed_contest(client)
    names = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)"]
    for name in names:
        user = await seeded.register(name=name)
        await play(client, user, seeded, right=1)
    await drain(client)
    url = f"/api/v1/admin/contests/{seeded.contest_id}/export"
    resp = await client.get(url, params={"what": "results", "format": "csv"}, headers=admin_headers())
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert sorted(r["name"] for r in rows) == sorted("'" + n for n in names)
    assert all(not r["score"].startswith("'") for r in rows)  # numbers stay numbers
    resp = await client.get(url, params={"what": "results", "format": "xlsx"}, headers=admin_headers())
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    col = header.index("name")
    cells = [row[col] for row in sheet.iter_rows(min_row=2)]
    assert sorted(str(c.value).lstrip("'") for c in cells) == sorted(names)
    assert all(c.data_type == "s" for c in cells)  # text cells: Excel shows them, never runs them


def test_row_limits_refuse_the_whole_file() -> None:
    rows = "".join(f"single,题{n},a,b,A\n" for n in range(6))
    result = parse_questions(f"type,stem,option_a,option_b,answer\n{rows}".encode(), filename="q.csv", max_rows=5)
    assert result.questions == [] and "too many rows" in result.errors[0].message
    orgs = "".join(f"o{n},,org {n},1,10\n" for n in range(6))
    parsed, errors = parse_orgs(f"org_id,parent_id,name,level,members\n{orgs}".encode(), filename="o.csv",
                                max_rows=5)
    assert parsed == [] and "too many rows" in errors[0].message
    ok, errors = parse_orgs(f"org_id,parent_id,name,level,members\n{orgs}".encode(), filename="o.csv", max_rows=6)
    assert errors == [] and len(ok) == 6


async def _raw_exchange(client: TestClient, payload: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes no HTTP client would send; return the status, headers and body of the reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(payload)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("payload", [
    b"GARBAGE\x01 / HTTP/1.1\r\nHost: x\r\n\r\n",  # a request line aiohttp cannot parse
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",  # header over its limit
])
async def test_unparseable_http_gets_the_json_error_shape(client: TestClient, payload: bytes) -> None:
    status, headers, body = await _raw_exchange(client, payload)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = orjson.loads(body)["error"]
    assert error["code"] == "bad_request" and error["message"].startswith("malformed request")
    assert error["details"] == {}
