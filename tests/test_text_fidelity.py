"""Text kept as written (issue 16 item 1): full-width punctuation and exam blanks ("（　）") survive
every import format, the paper, the attempt review, the boards, the exports and the pages.

Only NFC is applied (and surrounding whitespace trimmed); NFKC and case folding are for matching.
"""

from __future__ import annotations

import csv
import io
import time
import unicodedata
from typing import Any

import openpyxl
import orjson
import xlsxwriter
from aiohttp.test_utils import TestClient

from tests.fixtures.app import admin_headers, bearer
from tests.fixtures.waiting import until

TITLE = "全省法律知识竞赛（演示）"
DESCRIPTION = "演示竞赛：每次抽取 3 道题，限时 5 分钟！"
ORG = "荷塘村（试点）：第一组"
PERSON = "李　四（Ｌｅｅ）"
# one question per import format, each with full-width blanks and punctuation
STEMS = {
    "json": "宪法规定，（　）是国家的根本任务。",
    "csv": "下列说法正确的是（　）：请选择。",
    "xlsx": "“安全第一，预防为主”出自（　）？",
}
OPTIONS = ["甲：沿着中国特色社会主义道路", "乙（全称）", "丙，丁", "戊；己"]
EXPLANATION = "解析：见《宪法》序言（第七自然段）。"
# a decomposed "é" (e + combining acute) is stored composed: NFC is the one normalization applied
DECOMPOSED = "Café\u0301 题（　）"

ORGS_CSV = f"单位编号,上级单位,单位名称,层级,应参与人数\nP1,,江南省（测试）,1,0\nV1,P1,{ORG},2,10\n"


def _csv_bank() -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["id", "type", "stem", "option_a", "option_b", "option_c", "option_d", "answer", "category",
                "explanation"])
    w.writerow(["tf-csv", "单选", STEMS["csv"], *OPTIONS, "B", "法律", EXPLANATION])
    return out.getvalue().encode("utf-8-sig")


def _xlsx_bank() -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet()
    rows = [["题号", "题型", "题干", "选项A", "选项B", "选项C", "选项D", "答案", "分类", "解析"],
            ["tf-xlsx", "单选", STEMS["xlsx"], *OPTIONS, "B", "法律", EXPLANATION]]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write_string(r, c, value)
    book.close()
    return out.getvalue()


async def _post(client: TestClient, path: str, **kw: Any) -> Any:
    resp = await client.post(path, headers={**admin_headers(), **kw.pop("headers", {})}, **kw)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def seed_fidelity(client: TestClient) -> dict[str, Any]:
    """The org tree, a bank of three questions (JSON, CSV, XLSX) and a published contest of them."""
    await _post(client, "/api/v1/admin/orgs/import", data=ORGS_CSV.encode(), headers={"Content-Type": "text/csv"})
    bank = [{"id": "tf-json", "type": "single", "stem": STEMS["json"], "options": OPTIONS, "answer": "B",
             "category": "法律", "explanation": EXPLANATION},
            {"id": "tf-nfc", "type": "judge", "stem": "  " + DECOMPOSED + " ", "answer": "对", "category": "其他"}]
    await _post(client, "/api/v1/admin/questions/import", data=orjson.dumps(bank),
                headers={"Content-Type": "application/json"})
    await _post(client, "/api/v1/admin/questions/import?filename=bank.csv", data=_csv_bank(),
                headers={"Content-Type": "text/csv"})
    await _post(client, "/api/v1/admin/questions/import?filename=bank.xlsx", data=_xlsx_bank(),
                headers={"Content-Type": "application/octet-stream"})
    now = int(time.time() * 1000)
    contest = {"contest_id": "tf", "title": f"  {TITLE} ", "description": DESCRIPTION, "starts_at": now - 60_000,
               "ends_at": now + 3_600_000, "time_limit_s": 300, "attempts_per_day": 5, "feedback": "immediate",
               "paper": {"draw": [{"category": "法律", "count": 3}], "shuffle_questions": True,
                         "shuffle_options": False}}
    await _post(client, "/api/v1/admin/contests", json=contest)
    await _post(client, "/api/v1/admin/contests/tf/publish")
    resp = await client.post("/api/v1/auth/register", json={"name": PERSON, "phone": "１３９００００１１１１",
                                                            "org_id": "V1"})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_text_round_trips_through_imports_paper_review_boards_and_exports(client: TestClient) -> None:
    user = await seed_fidelity(client)
    assert user["name"] == PERSON  # full-width letters and the ideographic space are kept
    h = bearer(user["token"])
    me = await (await client.get("/api/v1/me", headers=h)).json()
    assert me["name"] == PERSON and me["org_name"] == ORG

    # the bank as the admin browses it; a search still folds full width ("ＣＡＦÉ" finds "Café́")
    listed = await (await client.get("/api/v1/admin/questions?limit=500", headers=admin_headers())).json()
    by_id = {q["id"]: q for q in listed["questions"]}
    for fmt, stem in STEMS.items():
        q = by_id[f"tf-{fmt}"]
        assert q["stem"] == stem and q["options"] == OPTIONS and q["explanation"] == EXPLANATION, fmt
    assert by_id["tf-nfc"]["stem"] == unicodedata.normalize("NFC", DECOMPOSED)
    found = await (await client.get("/api/v1/admin/questions", params={"q": "ＣＡＦ"},
                                    headers=admin_headers())).json()
    assert [q["id"] for q in found["questions"]] == ["tf-nfc"]

    detail = await (await client.get("/api/v1/contests/tf")).json()
    assert detail["title"] == TITLE and detail["description"] == DESCRIPTION
    listed_contests = await (await client.get("/api/v1/contests")).json()
    assert [c["title"] for c in listed_contests["contests"]] == [TITLE]

    # the paper, answered, and the attempt read back afterwards (the participant's review)
    attempt = await (await client.post("/api/v1/contests/tf/attempts", headers=h)).json()
    assert sorted(q["stem"] for q in attempt["questions"]) == sorted(STEMS.values())
    for q in attempt["questions"]:
        assert [o["text"] for o in q["options"]] == OPTIONS
        resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/answers", headers=h,
                                 json={"index": q["index"], "choice": "B"})
        assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/finish", headers=h)
    assert resp.status == 200, await resp.text()
    review = await (await client.get(f"/api/v1/attempts/{attempt['attempt_id']}", headers=h)).json()
    assert sorted(q["stem"] for q in review["questions"]) == sorted(STEMS.values())

    board = await (await client.get("/api/v1/contests/tf/leaderboard")).json()
    assert board["entries"][0]["org_name"] == ORG
    orgs = await (await client.get("/api/v1/contests/tf/orgs?parent_id=P1")).json()
    assert [o["name"] for o in orgs["entries"]] == [ORG]

    # exports, once the flusher has copied the result and the member (another stream, which may
    # land a batch later) into the database
    async def results_csv() -> list[list[str]]:
        resp = await client.get("/api/v1/admin/contests/tf/export?what=results&format=csv", headers=admin_headers())
        rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
        return rows if len(rows) > 1 and rows[1][rows[0].index("name")] else []

    rows = await until(results_csv, within=10, what="the result in the export")
    assert rows[1][rows[0].index("name")] == PERSON
    resp = await client.get("/api/v1/admin/contests/tf/export?what=results&format=xlsx", headers=admin_headers())
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read()), read_only=True).active
    header, first = list(sheet.iter_rows(values_only=True))[:2]
    assert first[header.index("name")] == PERSON



def test_duplicates_are_matched_folded_but_kept_as_written() -> None:
    from question_bank import parse_questions

    rows = [{"type": "single", "stem": "ABC（　）题", "options": ["甲", "乙"], "answer": "A"},
            {"type": "single", "stem": "ａｂｃ(　)题", "options": ["甲", "乙"], "answer": "A"},
            {"type": "single", "stem": "另一题（　）", "options": ["甲", "乙"], "answer": "A"}]
    result = parse_questions(orjson.dumps(rows), filename="bank.json")
    assert [(e.row, e.code) for e in result.errors] == [(2, "duplicate_question")]
    assert [q.stem for q in result.questions] == ["ABC（　）题", "另一题（　）"]
