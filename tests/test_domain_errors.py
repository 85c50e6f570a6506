"""Domain errors reach clients through one mapping in the web layer (contest/web/errors.py)."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from contest import errors
from contest.errors import Conflict, DeadlinePassed, DomainError, NotFound, RateLimited, Unavailable
from contest.storage.base import StorageUnavailable
from contest.web.errors import STATUS_OF, api_error, error_body, error_of
from tests.fixtures.app import admin_headers

_ROOT = Path(__file__).resolve().parent.parent


def test_every_domain_error_class_has_a_status() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, DomainError) and c is not DomainError]
    assert len(classes) >= 8
    assert sorted(c.__name__ for c in classes if c not in STATUS_OF) == []


@pytest.mark.parametrize(("exc", "status", "code"), [
    (NotFound("no such attempt"), 404, "not_found"),
    (Conflict("this attempt is finished", code="already_finished"), 409, "already_finished"),
    (DeadlinePassed("late", {"result": {"score": 3}}), 410, "deadline_passed"),
])
def test_status_code_and_details_survive_the_mapping(exc: DomainError, status: int, code: str) -> None:
    api = api_error(exc)
    assert (api.status, api.code, api.message, api.details) == (status, code, exc.message, exc.details)
    lane, backend = error_of(exc, "POST", "/api/v1/attempts/{aid}/answers")  # the answer lane's path
    assert (lane.status, lane.code, lane.details, backend) == (status, code, exc.details, None)


def test_rate_limited_carries_whole_seconds_in_details_and_retry_after() -> None:
    api = api_error(RateLimited("too many requests; slow down", "answer_user", 1001))
    assert (api.status, api.code) == (429, "rate_limited")
    assert api.details == {"scope": "answer_user", "retry_after_s": 2}
    assert api.headers == {"Retry-After": "2"}
    assert api_error(RateLimited("slow", "x", 0)).headers == {"Retry-After": "1"}


def test_a_domain_error_outside_the_table_is_a_500_not_a_guess() -> None:
    api = api_error(DomainError("something new"))
    assert (api.status, api.code) == (500, "internal_error")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_domain_raises_no_http_errors() -> None:
    """Outside contest/web/ and contest/cli/, nothing uses the web layer's ApiError, and nothing
    imports aiohttp.web but the app keys and the metrics (aiohttp's typed slots and middleware)."""
    offenders: dict[str, list[str]] = {}
    for path in sorted((_ROOT / "contest").rglob("*.py")):
        relative = path.relative_to(_ROOT).as_posix()
        if relative.startswith(("contest/web/", "contest/cli/")):
            continue
        imports = _imports(path)
        bad = sorted(n for n in imports if n.startswith("contest.web") or n.endswith(".ApiError"))
        if relative not in _AIOHTTP_WEB_ALLOWED:
            bad += sorted(n for n in imports if n in ("aiohttp.web", "aiohttp"))
        if bad:
            offenders[relative] = bad
    assert not offenders, offenders


# aiohttp's typed application slots and the metrics middleware live beside the domain so both
# the web layer and the workers can use them
_AIOHTTP_WEB_ALLOWED = {"contest/appkeys.py", "contest/metrics.py", "contest/sms/providers.py"}


def test_storage_unavailable_is_a_domain_503_that_keeps_its_own_words_and_backend() -> None:
    """The storage layer's refusal is an Unavailable, told in the service's words (the driver's
    message is for the log), with the Retry-After and the backend the metrics count."""
    exc = StorageUnavailable("postgres: ConnectionRefusedError: [Errno 111] Connect call failed")
    assert isinstance(exc, Unavailable)
    api, backend = error_of(exc, "POST", "/api/v1/attempts/{aid}/finish")
    assert (api.status, api.code, backend, api.headers) == (503, "unavailable", "database", {"Retry-After": "2"})
    assert "Errno" not in api.message


def test_an_error_document_echoing_any_value_the_client_sent_is_valid_json() -> None:
    """A 4xx's details may echo the request: past orjson's 64-bit integers and UTF-8 it stays a
    4xx (the fuzz test found a 500 for a question with points 2**111)."""
    body = error_body("validation_failed", "invalid fields: points", {"value": 2**111, "stem": "\udad1x"})
    assert json.loads(body)["error"]["details"] == {"value": 2**111, "stem": "\udad1x"}


async def test_a_question_with_points_past_64_bits_is_a_400(client: TestClient) -> None:
    resp = await client.post("/api/v1/admin/questions", headers=admin_headers(),
                             json={"id": "Q-BIG", "type": "single", "stem": "1+1?", "options": ["1", "2"],
                                   "answer": "B", "points": 2**111})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "validation_failed"
