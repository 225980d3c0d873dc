"""Start-up hooks run by the lifespan, in order (each an async context manager over the
`StudioState` it completes); they stop in reverse."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from app.auth.dependencies import authenticate
from app.core.logging import get_logger
from app.credentials.factory import build_providers
from app.discovery.checker import HealthChecker
from app.observability.gauges import STATE, CacheState
from app.proxy.client import ClientFactory
from app.proxy.state import build_proxy_state, default_client
from app.proxy.tracing import traced_client_factory
from app.reload import registry_reload
from app.state import StudioState
from app.websocket.front import build_front, running

log = get_logger("studio.lifespan")

Hook = Callable[[StudioState], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def session_cache(state: StudioState) -> AsyncIterator[None]:
    """The session cache's pub/sub subscriber (the cache serves nothing until it is live)."""
    cache = state.auth.session_store.cache
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
async def metrics_sampler(state: StudioState) -> AsyncIterator[None]:
    """Counts live sessions every 30 s for /metrics (a SCAN is too slow for each scrape)."""
    sampled: dict[str, int | None] = {"sessions": None}
    stop = asyncio.Event()
    store = state.auth.session_store

    async def sample() -> None:
        while not stop.is_set():
            try:
                sampled["sessions"] = await store.count_active()
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
async def proxy_components(state: StudioState) -> AsyncIterator[None]:
    """The proxy: credential providers, then every service's client, breaker and routes."""
    settings = state.settings
    registry = state.registry.current
    if state.credential_providers is None:
        state.credential_providers = build_providers(registry.config, settings)
    factory: ClientFactory = default_client
    if state.tracer_provider is not None:
        factory = traced_client_factory(state.tracer_provider, default_client)
    state.client_factory = factory
    proxy = build_proxy_state(
        registry.config,
        state.credential_providers,
        settings,
        client_factory=factory,
        version=registry.version,
    )
    state.proxy = proxy
    log.info("proxy ready", services=sorted(proxy.services))
    try:
        yield
    finally:
        await proxy.aclose()


@asynccontextmanager
async def discovery_components(state: StudioState) -> AsyncIterator[None]:
    """The downstream health checker (background probes when enabled) and its consumers."""
    assert state.proxy is not None  # started after `proxy_components`
    settings = state.settings
    checker = HealthChecker(state.proxy, settings.service_health_check_interval)
    if settings.service_health_check_enabled:
        checker.start()
    state.health_checker = checker
    STATE.breakers = state.proxy.breaker_states
    try:
        yield
    finally:
        await checker.stop()


# In order of start; they stop in reverse.
@asynccontextmanager
async def websocket_relay(state: StudioState) -> AsyncIterator[None]:
    """The WebSocket relay's hub and client session; on the way out, 1001 to every socket still
    open. Its hub hears the session cache's invalidations (started before it)."""
    settings = state.settings
    front = build_front(
        store=state.auth.session_store,
        redis=state.redis,
        identify=authenticate,
        cookie_policy=state.auth.cookie_policy,
        key_prefix=settings.redis_key_prefix,
        per_user_cap=settings.websocket_max_per_user,
        check_interval=settings.websocket_check_interval,
        ping_interval=settings.websocket_ping_interval,
    )
    state.websockets = front
    async with running(front):
        yield


HOOKS: list[Hook] = [
    session_cache,
    metrics_sampler,
    proxy_components,
    discovery_components,
    registry_reload,
    websocket_relay,
]
