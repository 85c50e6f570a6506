"""What every long-running command sets up before it serves: logging, the event loop, an embedded
Valkey when no Redis is configured. Shared by ``quiz serve`` (main.py) and ``quiz demo`` (demo.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from contest.embedded_redis import EmbeddedValkey
from contest.settings import Settings

__all__ = ["setup_logging", "use_uvloop", "with_embedded_redis"]

log = logging.getLogger("quiz")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # optional: not installed on Windows

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def with_embedded_redis(settings: Settings) -> tuple[Settings, EmbeddedValkey | None]:
    """Start an embedded Valkey when QUIZ_REDIS_URL is unset; returns (settings with its URL, server)."""
    if settings.redis_url:
        return settings, None
    # The embedded Valkey acknowledges only what is on disk (QUIZ_ACK_DURABILITY=fsync unless set):
    # `appendfsync always` fsyncs once per event-loop pass before the pass's replies go out, so a
    # pipelined batch shares one fsync (see contest/redis_client.py for why not WAITAOF).
    durability = settings.ack_durability or "fsync"
    fsync_args = ("--appendfsync", "always") if durability != "memory" else ()
    server = EmbeddedValkey(settings.data_dir / "valkey", appendonly=True, extra_args=fsync_args).start()
    log.info("QUIZ_REDIS_URL unset: started an embedded Valkey at %s (AOF in %s, acknowledgements: %s)",
             server.url, settings.data_dir / "valkey", durability)
    return settings.replace(redis_url=server.url, ack_durability=durability), server
