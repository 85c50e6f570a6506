"""Typed application slots (aiohttp AppKey), one place for all of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from contest.catalog import Catalog
    from contest.metrics import Metrics
    from contest.redis_client import ScriptRunner
    from contest.settings import Settings
    from contest.storage.base import Storage
    from contest.workers.flusher import Flusher
    from contest.workers.sweeper import Sweeper

__all__ = ["CATALOG", "FLUSHER", "METRICS", "REDIS", "RUNNER", "SETTINGS", "STORAGE", "SWEEPER", "TASKS"]

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
REDIS: web.AppKey[Any] = web.AppKey("redis")  # redis.asyncio.Redis or RedisCluster
RUNNER: web.AppKey[ScriptRunner] = web.AppKey("runner")
STORAGE: web.AppKey[Storage] = web.AppKey("storage")
CATALOG: web.AppKey[Catalog] = web.AppKey("catalog")
FLUSHER: web.AppKey[Flusher | None] = web.AppKey("flusher")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
TASKS: web.AppKey[list[Any]] = web.AppKey("tasks")
SWEEPER: web.AppKey[Sweeper | None] = web.AppKey("sweeper")

if TYPE_CHECKING:
    from contest.play import Play

PLAY: web.AppKey[Play] = web.AppKey("play")
__all__ += ["PLAY"]

if TYPE_CHECKING:
    from contest.otp import SmsCodes
    from contest.ratelimit import RateLimiter
    from contest.staff import StaffDirectory, StaffGate

SMS_CODES: web.AppKey[SmsCodes] = web.AppKey("sms_codes")
STAFF: web.AppKey[StaffDirectory] = web.AppKey("staff")
STAFF_GATE: web.AppKey[StaffGate] = web.AppKey("staff_gate")
LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
__all__ += ["LIMITER", "SMS_CODES", "STAFF", "STAFF_GATE"]
