"""/metrics: per-route request counts and latency histograms, answers, flusher batches and lag."""

from __future__ import annotations

import asyncio
import re
import time

from aiohttp.test_utils import TestClient

from contest.appkeys import FLUSHER
from tests.fixtures.app import seed_contest


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.M)
    assert match, f"{series} missing from /metrics"
    return float(match.group(1))


async def test_metrics_report_answers_routes_and_flusher(client: TestClient) -> None:
    seeded = await seed_contest(client)
    user = await seeded.register()
    resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts", headers=user["headers"])
    attempt = await resp.json()
    for q in attempt["questions"][:4]:
        choice = [q["options"][0]["key"]] if q["type"] == "multiple" else q["options"][0]["key"]
        resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/answers",
                                 json={"index": q["index"], "choice": choice}, headers=user["headers"])
        assert resp.status == 200
    resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/finish", headers=user["headers"])
    assert resp.status == 200
    flusher = client.server.app[FLUSHER]
    deadline = time.monotonic() + 10
    while await flusher.backlog() > 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    text = await (await client.get("/metrics")).text()
    assert _value(text, "quiz_answers_total") == 4
    assert _value(text, "quiz_finishes_total") == 1
    route = "/api/v1/attempts/{aid}/answers"
    assert _value(text, f'quiz_http_requests_total{{route="{route}",status="200"}}') == 4
    assert _value(text, f'quiz_http_request_seconds_count{{route="{route}"}}') == 4
    assert _value(text, f'quiz_http_request_seconds_bucket{{route="{route}",le="+Inf"}}') == 4
    # every event (registration, start, 4 answers, finish) went through the flusher's batches
    assert _value(text, "quiz_flusher_rows_total") >= 7
    batches = _value(text, "quiz_flusher_batch_size_count")
    assert batches >= 1 and _value(text, 'quiz_flusher_batch_size_bucket{le="+Inf"}') == batches
    assert _value(text, "quiz_flusher_batch_size_sum") == _value(text, "quiz_flusher_rows_total")
    assert _value(text, 'quiz_flusher_lag_ms_bucket{le="+Inf"}') == batches
    assert _value(text, "quiz_stream_backlog") == 0
    assert "quiz_sweeper_errors_total 0" in text


async def test_readyz_redis_only_form(client: TestClient) -> None:
    resp = await client.get("/readyz?only=redis")
    assert resp.status == 200 and (await resp.json())["redis"] == "ok"
    resp = await client.get("/readyz?only=postgres")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "validation_failed"
