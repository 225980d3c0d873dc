"""Domain start-up hooks run by the lifespan, in order (each an async context manager)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app.proxy.state import proxy_components

Hook = Callable[[FastAPI, dict[str, Any]], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def session_cache(app: FastAPI, state: dict[str, Any]) -> AsyncIterator[None]:
    """The session cache's pub/sub subscriber (the cache serves nothing until it is live)."""
    from app.observability.metrics import STATE, CacheState

    cache = state["session_store"].cache
    if cache is None:
        yield
        return
    cache.start()
    STATE.session_cache = lambda: CacheState(cache.live, len(cache), cache.hits, cache.misses)
    try:
        yield
    finally:
        STATE.session_cache = None
        await cache.stop()


@asynccontextmanager
async def metrics_sampler(app: FastAPI, state: dict[str, Any]) -> AsyncIterator[None]:
    """Counts live sessions every 30 s for /metrics (a SCAN is too slow for each scrape)."""
    from app.observability.metrics import STATE

    sampled: dict[str, int | None] = {"sessions": None}
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            try:
                sampled["sessions"] = await state["session_store"].count_active()
            except Exception:  # Redis down: the gauge goes missing, the app keeps running
                sampled["sessions"] = None
            # Waiting on the event, not sleeping: a stop always ends the loop, even when a
            # cancellation was swallowed inside a Redis connect.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 30)

    task = asyncio.create_task(sample(), name="metrics-sampler")
    STATE.active_sessions = lambda: sampled["sessions"]
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        await asyncio.wait({task}, timeout=5)


@asynccontextmanager
async def discovery_components(app: FastAPI, state: dict[str, Any]) -> AsyncIterator[None]:
    """The downstream health checker (background probes when enabled) and its consumers."""
    from app.discovery.checker import HealthChecker
    from app.observability.metrics import STATE

    settings = state["settings"]
    checker = HealthChecker(state["proxy"], settings.service_health_check_interval)
    if settings.service_health_check_enabled:
        checker.start()
    state["health_checker"] = checker
    STATE.breakers = state["proxy"].breaker_states
    try:
        yield
    finally:
        await checker.stop()


# In order of start; they stop in reverse.
HOOKS: list[Hook] = [session_cache, metrics_sampler, proxy_components, discovery_components]
