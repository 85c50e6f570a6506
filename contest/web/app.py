"""The application factory: it only wires settings, connections, background tasks and routes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from contest.appkeys import CATALOG, FLUSHER, LIMITER, METRICS, PLAY, REDIS, RUNNER, SETTINGS, STORAGE, SWEEPER
from contest.catalog import Catalog
from contest.metrics import Metrics, metrics_middleware
from contest.play import Play
from contest.ratelimit import RateLimiter
from contest.redis_client import check_durability, connect_redis, make_runner
from contest.settings import Settings
from contest.storage import open_storage
from contest.web.compression import compression_middleware
from contest.web.errors import error_middleware
from contest.web.front_door import front_door_middleware
from contest.web.live import LIVE, LiveHub
from contest.web.routes import setup_routes
from contest.web.views.boards import live_snapshot
from contest.workers.flusher import Flusher
from contest.workers.sweeper import Sweeper

__all__ = ["create_app"]

log = logging.getLogger(__name__)


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url, "create_app needs a Redis URL (the CLI starts an embedded Valkey when unset)"
    client = connect_redis(settings.redis_url, cluster=settings.redis_cluster)
    durability = settings.ack_durability or "memory"
    await check_durability(client, durability)  # a misconfigured server fails startup, not every request
    runner = make_runner(settings.redis_url, client, cluster=settings.redis_cluster, durability=durability,
                         ack_timeout_ms=settings.ack_timeout_ms)
    app[REDIS] = client
    app[RUNNER] = runner
    app[LIMITER] = RateLimiter(runner, settings)
    yield
    await runner.aclose()
    await client.aclose()


async def _storage_ctx(app: web.Application) -> AsyncIterator[None]:
    storage = open_storage(app[SETTINGS].effective_database_url)
    await storage.open()
    app[STORAGE] = storage
    yield
    await storage.close()


async def _catalog_ctx(app: web.Application) -> AsyncIterator[None]:
    catalog = Catalog(app[REDIS], app[STORAGE])
    await catalog.bootstrap()
    app[CATALOG] = catalog
    app[PLAY] = Play(app[RUNNER], app[REDIS], catalog, app[SETTINGS])
    stop = asyncio.Event()
    task = asyncio.create_task(catalog.run(stop), name="catalog-refresh")
    yield
    stop.set()
    await task


async def _workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Flusher, sweeper and live ticker; on exit they stop, the flusher with a final flush."""
    settings = app[SETTINGS]
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    app[FLUSHER] = None
    if settings.run_flusher:
        flusher = Flusher(app[REDIS], app[STORAGE], consumer=f"{socket.gethostname()}-{os.getpid()}",
                          batch=settings.flush_batch, block_ms=settings.flush_interval_ms)
        app[FLUSHER] = flusher
        tasks.append(asyncio.create_task(flusher.run(stop), name="flusher"))
    app[SWEEPER] = None
    if settings.run_sweeper:
        sweeper = Sweeper(app[PLAY], app[CATALOG])
        app[SWEEPER] = sweeper
        tasks.append(asyncio.create_task(sweeper.run(stop, settings.sweep_interval_ms / 1000), name="sweeper"))

    async def snapshot(contest_id: str) -> dict[str, object]:
        return await live_snapshot(app, contest_id)

    hub = LiveHub(snapshot, settings.live_tick_ms / 1000)
    app[LIVE] = hub
    tasks.append(asyncio.create_task(hub.run(stop), name="live"))
    yield
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            log.warning("%s stopped with %r", task.get_name(), result)
    stopped = app[FLUSHER]
    if stopped is not None:
        log.info("shutdown: flusher wrote %s rows in %s batches", getattr(stopped, "rows", "?"),
                 getattr(stopped, "batches", "?"))


@web.middleware
async def _fresh_catalog(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Admin requests see every change made through any process (``--workers N``, many pods).

    Each process caches the bank, org tree and contests and follows changes once a second; an
    admin script that creates a contest on one process and publishes it on the next would
    otherwise find it missing.  Admin calls are rare: one pipelined version check each.
    """
    if request.path.startswith("/api/v1/admin/"):
        await request.app[CATALOG].refresh()
    return await handler(request)


def create_app(settings: Settings) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        # the front door's middleware is outermost: it finishes each response and lets the
        # connection's next request go (contest/web/front_door.py); compression is innermost, so it
        # sees the handlers' own responses (JSON over 1 KB leaves compressed)
        middlewares=[front_door_middleware, metrics_middleware(metrics), error_middleware, _fresh_catalog,
                     compression_middleware],
        client_max_size=max(settings.import_max_bytes, settings.max_body_bytes),
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app.cleanup_ctx.extend([_redis_ctx, _storage_ctx, _catalog_ctx, _workers_ctx])
    setup_routes(app)
    return app
