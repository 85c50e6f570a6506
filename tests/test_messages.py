"""Stable error codes and Chinese messages (issue 16 item 5): Accept-Language zh-CN answers in
Chinese with the form's labels, English otherwise; every import row error has a code."""

from __future__ import annotations

import time

import orjson
from aiohttp.test_utils import TestClient

from contest.messages import prefers_chinese
from tests.fixtures.app import admin_headers, seed_contest

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
BAD_BANK = [
    {"type": "single", "stem": "  ", "options": ["甲", "乙"], "answer": "A"},
    {"type": "single", "stem": "第二题（　）", "options": ["甲", "乙", "丙"], "answer": "E"},
    {"type": "判断", "stem": "第三题", "answer": "也许"},
    {"type": "填空", "stem": "第四题", "answer": "A"},
]


def test_accept_language_picks_the_first_preferred() -> None:
    assert prefers_chinese("zh-CN") and prefers_chinese("zh-CN,en;q=0.5") and prefers_chinese("en;q=0.3, zh")
    assert not prefers_chinese(None) and not prefers_chinese("en-US,zh;q=0.5") and not prefers_chinese("")


async def _import(client: TestClient, body: object, extra: dict[str, str]) -> dict:
    resp = await client.post("/api/v1/admin/questions/import", data=orjson.dumps(body),
                             headers={**admin_headers(), "Content-Type": "application/json", **extra})
    assert resp.status == 400
    return (await resp.json())["error"]


async def test_import_row_errors_have_codes_and_chinese_text(client: TestClient) -> None:
    zh = await _import(client, BAD_BANK, ZH)
    en = await _import(client, BAD_BANK, {})
    assert zh["code"] == en["code"] == "validation_failed"
    codes = [(e["row"], e["column"], e["code"]) for e in zh["details"]["errors"]]
    assert codes == [(1, "stem", "stem_empty"), (2, "answer", "answer_not_an_option"),
                     (3, "answer", "answer_not_an_option"), (4, "type", "unknown_type")]
    assert [e["code"] for e in en["details"]["errors"]] == [c for *_, c in codes]
    by_row = {e["row"]: e for e in zh["details"]["errors"]}
    assert by_row[1]["message"] == "题干为空" and by_row[1]["column_label"] == "题干"
    assert by_row[2]["message"] == "答案“E”无效：请填写 A 到 C 之间的选项字母"
    assert by_row[2]["params"]["value"] == "E"
    assert by_row[3]["message"] == "答案“也许”无效：请填写 对/错 或 A/B"
    assert "单选、多选或判断" in by_row[4]["message"]
    assert zh["message"] == "4 处错误，未导入任何内容"
    en_rows = {e["row"]: e for e in en["details"]["errors"]}
    assert en_rows[1]["message"] == "stem is empty" and en_rows[1]["column_label"] == "Stem"
    # a file that cannot be read: the missing columns named by their template headers
    resp = await client.post("/api/v1/admin/questions/import?filename=q.csv", data="题干,分类\n一,二\n".encode(),
                             headers={**admin_headers(), **ZH})
    error = (await resp.json())["error"]
    assert error["details"]["errors"][0]["code"] == "missing_columns"
    assert error["message"] == "填写的内容有误：表头缺少必填列：题型、答案"


async def test_contest_errors_name_the_form_labels_and_both_ends_of_a_range(client: TestClient) -> None:
    await seed_contest(client, contest_id="c1")
    now = int(time.time() * 1000)
    body = {"title": "", "starts_at": now + 3_600_000, "ends_at": now, "paper": {"draw": [{"count": 2}]},
            "time_limit_s": -1}
    resp = await client.post("/api/v1/admin/contests", json=body, headers={**admin_headers(), **ZH})
    assert resp.status == 400
    error = (await resp.json())["error"]
    fields = error["details"]["fields"]
    assert fields["starts_at"] == fields["ends_at"] == "结束时间必须晚于开始时间"
    assert fields["title"] == "标题不能为空" and fields["time_limit_s"] == "答题时限（秒）不能小于 0"
    assert error["details"]["field_errors"]["ends_at"] == {
        "code": "date_range", "params": {"from": "starts_at", "to": "ends_at"}, "label": "结束时间"}
    assert error["message"].startswith("填写的内容有误：") and "结束时间必须晚于开始时间" in error["message"]
    en = (await (await client.post("/api/v1/admin/contests", json=body, headers=admin_headers())).json())["error"]
    assert en["details"]["fields"]["ends_at"] == "ends_at must be after starts_at"
    assert en["details"]["field_errors"]["starts_at"]["code"] == "date_range"
    assert en["details"]["field_errors"]["ends_at"]["label"] == "End time"
    # other codes are worded too, and keep their code
    resp = await client.get("/api/v1/contests/nope", headers=ZH)
    assert (await resp.json())["error"] == {"code": "not_found", "message": "没有找到", "details": {}}
    resp = await client.post("/api/v1/auth/register", json={"name": "张三", "phone": "12", "org_id": "x"},
                             headers=ZH)
    fields = (await resp.json())["error"]["details"]["fields"]
    assert fields == {"phone": "手机号必须是 11 位中国大陆手机号", "org_id": "所在单位不存在"}
