"""The question editor (issue 16 item 3): POST / PUT / DELETE with the import's checks; a question
drawn into an attempt is never changed or deleted under it: edits make a new version and the
served one is retired (kept for the attempt, its review and the exports, never drawn again)."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from aiohttp.test_utils import TestClient

from question_bank import Question, QuestionBank
from question_bank.versions import plan_delete, plan_upsert, retire_superseded
from tests.fixtures.app import admin_headers, seed_contest
from tests.fixtures.waiting import until

ZH = {"Accept-Language": "zh-CN"}
Q = {"id": "ed1", "type": "single", "stem": "原题：宪法是（　）。", "options": ["根本法", "普通法"], "answer": "A",
     "category": "编辑测试", "difficulty": 2, "points": 10, "explanation": "解析一"}


def test_versions_plan() -> None:
    q = Question("a", "single", "s", ("x", "y"), "A")
    bank = QuestionBank([q])
    edited = Question("a", "single", "s2", ("x", "y"), "A")
    assert plan_upsert(bank, [q], set()) == []  # unchanged: nothing to do
    assert plan_upsert(bank, [edited], set()) == [edited]  # undrawn: in place
    planned = plan_upsert(bank, [edited], {"a"})
    assert [(p.id, p.stem, p.retired) for p in planned] == [("a~2", "s2", False), ("a", "s", True)]
    bank2, _, _ = bank.merged(planned)
    assert bank2.candidates() == ("a~2",) and bank2["a"].retired
    assert plan_upsert(bank2, [Question("a", "single", "s2", ("x", "y"), "A")], {"a"}) == []  # same as latest
    assert plan_delete(bank2, "a~2", set()) == ([], ["a~2"])
    assert plan_delete(bank2, "a~2", {"a~2"})[0][0].retired
    assert [q.retired for q in retire_superseded([q, edited.__class__("a~2", "single", "s2", ("x",), "A")])] == [
        True, False]
    assert QuestionBank.from_snapshot(bank2.to_snapshot()) == bank2


async def _contest(client: TestClient, cid: str) -> None:
    now = int(time.time() * 1000)
    body = {"contest_id": cid, "title": "编辑测试", "starts_at": now - 60_000, "ends_at": now + 3_600_000,
            "attempts_per_day": 10, "paper": {"draw": [{"category": "编辑测试", "count": 1}],
                                              "shuffle_options": False}}
    resp = await client.post("/api/v1/admin/contests", json=body, headers=admin_headers())
    assert resp.status == 201, await resp.text()
    assert (await client.post(f"/api/v1/admin/contests/{cid}/publish", headers=admin_headers())).status == 200


async def _bank(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/api/v1/admin/questions", params={"category": "编辑测试", "limit": 50},
                            headers=admin_headers())
    listed = await resp.json()
    return {q["id"]: q for q in listed["questions"]}


async def test_editor_versions_a_drawn_question(client: TestClient) -> None:
    seeded = await seed_contest(client)
    h = admin_headers()
    resp = await client.post("/api/v1/admin/questions", json=Q, headers=h)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["question"]["version"] == 1
    assert (await client.post("/api/v1/admin/questions", json=Q, headers=h)).status == 409
    # the import's checks, in Chinese with the form's labels
    resp = await client.post("/api/v1/admin/questions", json={**Q, "id": "ed2", "stem": " ", "answer": "E"},
                             headers={**h, **ZH})
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["details"]["fields"] == {"stem": "题干为空",
                                                                  "answer": "答案“E”无效：请填写 A 到 B 之间的选项字母"}
    assert error["details"]["field_errors"]["stem"]["code"] == "stem_empty"

    # not drawn yet: changed in place
    resp = await client.put("/api/v1/admin/questions/ed1", json={**Q, "explanation": "解析二"}, headers=h)
    body = await resp.json()
    assert resp.status == 200 and body["versioned"] is False and body["question"]["explanation"] == "解析二"

    # drawn into a running attempt: the edit is a new version, the attempt keeps what it served
    await _contest(client, "ed")
    user = await seeded.register()
    attempt = await (await client.post("/api/v1/contests/ed/attempts", headers=user["headers"])).json()
    assert attempt["questions"][0]["stem"] == Q["stem"]
    resp = await client.put("/api/v1/admin/questions/ed1", json={**Q, "stem": "新题：宪法是（　）。"}, headers=h)
    body = await resp.json()
    assert body["versioned"] is True and body["question"]["id"] == "ed1~2" and body["question"]["version"] == 2
    bank = await _bank(client)
    assert bank["ed1"]["retired"] is True and bank["ed1"]["stem"] == Q["stem"]
    assert bank["ed1~2"]["retired"] is False
    # PUT by the old id edits the latest version
    resp = await client.put("/api/v1/admin/questions/ed1", json={**Q, "stem": "新题：宪法是（　）。", "points": 20},
                            headers=h)
    assert (await resp.json())["question"]["id"] == "ed1~2", await resp.text()  # not drawn yet: in place

    running = await (await client.get(f"/api/v1/attempts/{attempt['attempt_id']}", headers=user["headers"])).json()
    assert running["questions"][0]["stem"] == Q["stem"]
    resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/answers", headers=user["headers"],
                             json={"index": 0, "choice": "A"})
    assert (await resp.json())["correct"] is True
    await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/finish", headers=user["headers"])
    # the next attempt draws the new version only
    second = await (await client.post("/api/v1/contests/ed/attempts", headers=user["headers"])).json()
    assert second["questions"][0]["stem"] == "新题：宪法是（　）。" and second["questions"][0]["points"] == 20

    # the export names the version that was served
    async def answers() -> list[list[str]]:
        resp = await client.get("/api/v1/admin/contests/ed/export?what=answers", headers=h)
        rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
        return rows if len(rows) > 1 else []

    rows = await until(answers, within=10, what="the answer in the export")
    assert rows[1][rows[0].index("question_id")] == "ed1"

    # delete: a drawn version is retired, an undrawn one removed
    resp = await client.delete("/api/v1/admin/questions/ed1~2", headers=h)
    assert (await resp.json()) == {"question_id": "ed1~2", "result": "retired"}
    resp = await client.post("/api/v1/admin/questions", json={**Q, "id": "ed3"}, headers=h)
    assert resp.status == 201
    resp = await client.delete("/api/v1/admin/questions/ed3", headers=h)
    assert (await resp.json())["result"] == "deleted"
    assert (await client.delete("/api/v1/admin/questions/ed3", headers=h)).status == 404
    assert (await client.put("/api/v1/admin/questions/nope", json=Q, headers=h)).status == 404
    # nothing drawable is left in the category: a new attempt cannot be drawn
    resp = await client.post("/api/v1/admin/paper/check", json={"draw": [{"category": "编辑测试", "count": 1}]},
                             headers=h)
    assert (await resp.json())["ok"] is False
