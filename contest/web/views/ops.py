"""Operations endpoints and the static pages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from aiohttp import web

from contest.appkeys import FLUSHER, METRICS, REDIS, RUNNER, STORAGE, SWEEPER
from contest.web.jsonio import json_response
from contest.web.live import LIVE
from contest.web.openapi import OPENAPI_SPEC
from contest.web.static_assets import STATIC_ROOT, assets_for, page_handler, serve_static

__all__ = ["healthz", "metrics", "openapi", "readyz", "setup_pages"]


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _check(coro: Awaitable[object]) -> str | None:
    try:
        await asyncio.wait_for(coro, 2.0)
    except Exception as exc:  # the message is the report
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


async def readyz(request: web.Request) -> web.Response:
    redis_error = await _check(request.config_dict[REDIS].ping())
    db_error = await _check(request.config_dict[STORAGE].ping())
    flusher = request.config_dict.get(FLUSHER)
    backlog = None
    if flusher is not None and redis_error is None:
        try:
            backlog = await asyncio.wait_for(flusher.backlog(), 2.0)
        except Exception:
            backlog = None
    # ?only=redis: ready while Redis is, whatever the database: play goes on through a database
    # outage (the streams hold the events), so a load balancer's readiness probe uses this form
    only = request.query.get("only")
    if only not in (None, "redis"):
        return json_response({"error": {"code": "validation_failed", "message": "only may be 'redis'",
                                        "details": {"fields": {"only": "must be 'redis'"}}}}, status=400)
    ok = redis_error is None and (db_error is None or only == "redis")
    body = {"status": "ready" if ok else "unavailable", "redis": redis_error or "ok", "database": db_error or "ok",
            "backlog": backlog}
    if not ok:
        return json_response({**body, "error": {"code": "unavailable", "message": "a backing store is down",
                                                "details": {"redis": redis_error, "database": db_error}}},
                             status=503)
    return json_response(body)


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    hub = app[LIVE]
    gauges: dict[str, float] = {"quiz_live_subscribers": hub.subscriber_count(),
                                "quiz_live_snapshots": hub.computes}
    runner = request.config_dict[RUNNER]
    if hasattr(runner, "calls"):
        gauges["quiz_redis_script_calls"] = runner.calls
    if hasattr(runner, "writes"):
        gauges["quiz_redis_writes"] = runner.writes
    histograms = {}
    counters: dict[str, float] = {}
    flusher = app.get(FLUSHER)
    if flusher is not None:
        histograms = {"quiz_flusher_batch_size": flusher.batch_sizes, "quiz_flusher_lag_ms": flusher.lags}
        counters = {"quiz_flusher_rows_total": flusher.rows, "quiz_flusher_errors_total": flusher.errors}
        for name in ("rows", "batches", "last_batch_size", "last_lag_ms", "errors"):
            value = getattr(flusher, name, None)
            if isinstance(value, int | float):
                gauges[f"quiz_flusher_{name}"] = value
        try:
            gauges["quiz_stream_backlog"] = await asyncio.wait_for(flusher.backlog(), 1.0)
        except Exception:
            app[METRICS].errors["redis"] += 1
    sweeper = app.get(SWEEPER)
    if sweeper is not None:
        counters["quiz_sweeper_finished_total"] = sweeper.finished
        counters["quiz_sweeper_errors_total"] = sweeper.errors
    text = app[METRICS].render(gauges, histograms, counters)
    return web.Response(text=text, content_type="text/plain")


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI_SPEC])


def setup_pages(app: web.Application) -> None:
    """The pages and /static/: content-hashed asset URLs, compressed once (contest/web/static_assets.py)."""
    assets = assets_for(STATIC_ROOT)
    app.router.add_get("/", page_handler("h5/index.html", assets))
    app.router.add_get("/dashboard/", page_handler("dashboard/index.html", assets))
    app.router.add_get("/admin/", page_handler("admin/index.html", assets))
    app.router.add_get("/screen/{cid}", page_handler("screen/index.html", assets))
    app.router.add_get("/static/{path:.+}", serve_static(assets))
