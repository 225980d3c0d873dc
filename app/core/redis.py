"""Redis: one pooled client per process (standalone, Sentinel, Cluster or in-process)."""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from app.core.config import Settings

# Every client create_redis builds (fakeredis's FakeAsyncRedis and Sentinel's master are Redis).
RedisClient: TypeAlias = Redis | RedisCluster
RETRIES = 5


def _retry() -> Retry:
    # Short, jittered backoff on connection errors only: a refused or reset connection is
    # retried, but a command that timed out is not (a frozen Redis would otherwise hold each
    # request for RETRIES x socket_timeout before failing closed).
    return Retry(
        ExponentialWithJitterBackoff(cap=0.2, base=0.01),
        RETRIES,
        supported_errors=(RedisConnectionError,),
    )


def _common(settings: Settings) -> dict[str, Any]:
    return {
        "socket_connect_timeout": 1.0,
        "socket_timeout": 2.0,
        "retry": _retry(),
        "retry_on_error": [RedisConnectionError],
        "health_check_interval": 30,
        "decode_responses": False,
    }


def create_redis(settings: Settings, max_connections: int | None = None) -> RedisClient:
    """Build the client from REDIS_URL, REDIS_HOST or, in an embedded dev run, fakeredis.

    `max_connections` (default REDIS_MAX_CONNECTIONS) sizes the pool, per node on a cluster.
    """
    limit = max_connections or settings.redis_max_connections
    if settings.redis_url:
        return _from_url(settings.redis_url, settings, limit, max_connections is not None)
    if settings.redis_host:
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        pool = BlockingConnectionPool(
            host=settings.redis_host,
            port=settings.redis_port,
            db=settings.redis_db,
            password=password,
            max_connections=limit,
            timeout=5,
            **_common(settings),
        )
        return Redis(connection_pool=pool)
    from fakeredis import FakeAsyncRedis  # embedded dev default only

    return FakeAsyncRedis()


def _from_url(url: str, settings: Settings, limit: int, forced: bool) -> RedisClient:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("redis+sentinel", "sentinel"):
        # redis+sentinel://[:password@]host:port[,host:port]/service_name[/db]
        hosts = [h.rsplit(":", 1) for h in parts.netloc.rsplit("@", 1)[-1].split(",")]
        path = [p for p in parts.path.split("/") if p]
        service = path[0] if path else "mymaster"
        db = int(path[1]) if len(path) > 1 else settings.redis_db
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [(h, int(p)) for h, p in hosts],
            password=parts.password,
            db=db,
            **_common(settings),
        )
        # master_for is untyped upstream; it builds its `redis_class`, Redis by default.
        master: Redis = sentinel.master_for(service, max_connections=limit)
        return master
    if scheme in ("redis+cluster", "rediss+cluster", "cluster"):
        real = ("rediss" if scheme.startswith("rediss") else "redis") + url[len(scheme) :]
        common = _common(settings)
        common.pop("retry_on_error")
        common.pop("health_check_interval")
        return RedisCluster.from_url(real, max_connections=limit, **common)
    query = parse_qs(parts.query)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=int(query.get("max_connections", [limit])[0]) if not forced else limit,
        timeout=5,
        **_common(settings),
    )
    return Redis(connection_pool=pool)


async def close_redis(client: RedisClient) -> None:
    await client.aclose()
