"""Import templates (issue 16 item 4): Chinese headers, two example rows, each imports as is."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from contest.orgtree import parse_orgs
from contest.templates import render_template
from question_bank import parse_questions
from tests.fixtures.app import admin_headers


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_templates_parse_with_their_chinese_headers(fmt: str) -> None:
    data, name = render_template("questions", fmt)
    result = parse_questions(data, filename=name)
    assert not result.errors and [q.id for q in result.questions] == ["q-example-1", "q-example-2"]
    assert result.questions[0].stem == "宪法规定，（　）是国家的根本任务。" and result.questions[1].answer == "ABC"
    data, name = render_template("orgs", fmt)
    orgs, errors = parse_orgs(data, filename=name)
    assert not errors and [(o.org_id, o.level, o.members) for o in orgs] == [("100000", 1, 0), ("100100", 2, 120)]


async def test_template_endpoint(client: TestClient) -> None:
    resp = await client.get("/api/v1/admin/templates/questions.csv", headers=admin_headers())
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert "filename*=UTF-8''%E9%A2%98" in resp.headers["Content-Disposition"]
    assert (await resp.read()).startswith("\ufeff编号,题型,题干,选项A".encode())
    for bad in ("questions.xls", "users.csv", "orgs"):
        resp = await client.get(f"/api/v1/admin/templates/{bad}", headers=admin_headers())
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await client.get("/api/v1/admin/templates/orgs.xlsx")
    assert resp.status == 401
