"""Dependency probes with short timeouts; results carry no address or error text."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.redis import RedisClient

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


async def _services(checker: Any) -> dict[str, Any] | None:
    if checker is None:
        return None
    try:
        return await asyncio.wait_for(checker.overview(), PROBE_TIMEOUT * 3)
    except TimeoutError:
        return checker.snapshot()  # type: ignore[no-any-return]


async def readiness(state: Any) -> tuple[bool, dict[str, Any]]:
    """Probe PostgreSQL and Redis concurrently; ready when both answer."""
    checker = getattr(state, "health_checker", None)  # set by the discovery start-up hook
    database, redis, services = await asyncio.gather(
        probe_database(state.engine),
        probe_redis(state.redis),
        _services(checker),
    )
    checks: dict[str, Any] = {"database": database, "redis": redis}
    ready = database["status"] == "up" and redis["status"] == "up"
    if services is not None:
        checks["services"] = services  # reported; a down downstream does not make Studio unready
    return ready, {"status": "ok" if ready else "unavailable", "checks": checks}
