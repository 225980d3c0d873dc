"""Dependency probes with short timeouts; results carry no address or error text."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.redis import RedisClient
from app.discovery.checker import HealthChecker
from app.registry.live import LiveRegistry

PROBE_TIMEOUT = 2.0


async def _timed(probe: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), PROBE_TIMEOUT)
    except Exception:  # any failure means "down"; the reason stays in our logs, not the body
        return {"status": "down", "latency_ms": None}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def probe_database(engine: AsyncEngine) -> dict[str, Any]:
    async def ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return await _timed(ping)


async def probe_redis(redis: RedisClient) -> dict[str, Any]:
    async def ping() -> None:
        await redis.ping()

    return await _timed(ping)


async def _services(checker: HealthChecker | None) -> dict[str, Any] | None:
    if checker is None:
        return None
    try:
        return await asyncio.wait_for(checker.overview(), PROBE_TIMEOUT * 3)
    except TimeoutError:
        return checker.snapshot()


def registry_status(live: LiveRegistry) -> dict[str, Any]:
    """The registry serving now and the last reload's outcome (its error stays in the logs)."""
    current = live.current
    attempt = live.last_attempt
    last = None
    if attempt is not None:
        last = {"outcome": attempt.outcome.value, "at": attempt.at, "version": attempt.version}
    return {"version": current.version, "loaded_at": current.loaded_at, "last_reload": last}


async def readiness(
    engine: AsyncEngine,
    redis: RedisClient,
    checker: HealthChecker | None,
    live: LiveRegistry | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Probe PostgreSQL and Redis concurrently; ready when both answer. The downstreams'
    health (`checker`, when discovery runs) is reported but never makes Studio unready."""
    database, redis_check, services = await asyncio.gather(
        probe_database(engine), probe_redis(redis), _services(checker)
    )
    checks: dict[str, Any] = {"database": database, "redis": redis_check}
    ready = database["status"] == "up" and redis_check["status"] == "up"
    if services is not None:
        checks["services"] = services
    if live is not None:
        checks["registry"] = registry_status(live)
    return ready, {"status": "ok" if ready else "unavailable", "checks": checks}
