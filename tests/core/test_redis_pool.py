"""`create_redis` from REDIS_HOST/REDIS_PORT/REDIS_PASSWORD: the production shape, against the
real Redis of the run (TEST_REDIS_URL or 127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr
from redis.asyncio import BlockingConnectionPool, Redis

from app.core.config import Settings
from app.core.redis import close_redis, create_redis
from tests.services import DEFAULT_REDIS_URL

URL = urlsplit(os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL)
HOST = URL.hostname or "127.0.0.1"
PORT = URL.port or 6379


def _client(max_connections: int | None = None, **overrides: Any) -> Redis:
    values: dict[str, Any] = {
        "environment": "dev",
        "redis_host": HOST,
        "redis_port": PORT,
        "redis_db": 0,
        "redis_max_connections": 3,
    }
    values.update(overrides)
    settings = Settings(_env_file=None, **values)
    client = create_redis(settings, max_connections)
    assert isinstance(client, Redis)  # not fakeredis's, not a cluster
    return client


async def test_redis_host_builds_a_bounded_pooled_client_that_answers() -> None:
    client = _client()
    try:
        pool = client.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert pool.max_connections == 3
        assert pool.connection_kwargs["host"] == HOST
        assert pool.connection_kwargs["port"] == PORT
        assert await client.ping() is True
        # Ten concurrent commands share the three connections the pool may open.
        await asyncio.gather(*(client.ping() for _ in range(10)))
        opened = len(pool._available_connections) + len(pool._in_use_connections)
        assert 1 <= opened <= 3
    finally:
        await close_redis(client)


async def test_max_connections_argument_overrides_the_setting() -> None:
    client = _client(max_connections=1)
    try:
        assert client.connection_pool.max_connections == 1
        assert await client.ping() is True
    finally:
        await close_redis(client)


async def test_redis_password_reaches_the_connection() -> None:
    # The run's Redis has a `nopass` default user, which takes any password on AUTH.
    client = _client(redis_password=SecretStr("s3cret"))
    try:
        assert client.connection_pool.connection_kwargs["password"] == "s3cret"
        assert await client.ping() is True
        [connection] = client.connection_pool._available_connections
        assert connection.password == "s3cret"
    finally:
        await close_redis(client)


async def test_without_a_password_none_is_sent() -> None:
    client = _client()
    try:
        assert client.connection_pool.connection_kwargs["password"] is None
    finally:
        await close_redis(client)
