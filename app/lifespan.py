"""Lifespan: every shared client is created here once and closed on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from app import startup
from app.auth.dependencies import build_auth_state
from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.logging import get_logger
from app.core.redis import close_redis, create_redis
from app.observability import tracing
from app.registry.live import LiveRegistry, LoadedRegistry
from app.runtime import gc as runtime_gc
from app.state import StudioState

log = get_logger("studio.lifespan")


def build_lifespan(settings: Settings) -> Any:
    """The lifespan of one app instance; its state reaches handlers as `request.state`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        registry = LiveRegistry(_loaded_registry(app))  # by `create_app`: errors stop it
        engine = create_engine(settings)
        redis = create_redis(settings)
        # The session cache's subscriber holds a connection for good: its own small client, so
        # it never takes one from the requests' pool (an in-process Redis is shared as it is).
        listener = redis
        if settings.session_cache_seconds > 0 and not settings.redis_in_process:
            listener = create_redis(settings, max_connections=2)
        try:
            if settings.run_migrations or settings.embedded:
                await migrations.upgrade(engine)
            state = StudioState(
                settings=settings,
                engine=engine,
                sessions=create_sessionmaker(engine),
                redis=redis,
                registry=registry,
                auth=build_auth_state(settings, redis, listener),
                tracer_provider=getattr(app.state, "tracer_provider", None),
                registry_listeners=list(getattr(app.state, "registry_listeners", ())),
            )
            untrace = tracing.instrument_clients(state.tracer_provider, engine)
            async with _extensions(state):
                log.info(
                    "studio started",
                    environment=settings.environment,
                    embedded=settings.embedded,
                    database=engine.dialect.name,
                )
                # Everything built so far lives as long as the process (RUNTIME_GC_FREEZE).
                with runtime_gc.frozen(settings.runtime_gc_freeze):
                    yield state.request_state()
            untrace()
        finally:
            if listener is not redis:
                await close_redis(listener)
            await close_redis(redis)
            await engine.dispose()
            log.info("studio stopped")

    return lifespan


def _loaded_registry(app: FastAPI) -> LoadedRegistry:
    """The registry `create_app` loaded with its version (one set on `app.state.registry`
    by hand, as tests do, has none)."""
    loaded: LoadedRegistry | None = getattr(app.state, "loaded_registry", None)
    if loaded is not None and loaded.config is app.state.registry:
        return loaded
    return LoadedRegistry(app.state.registry, "unversioned", datetime.now(UTC), ())


@asynccontextmanager
async def _extensions(state: StudioState) -> AsyncIterator[None]:
    """Start the domains that own background work or clients, in order; stop in reverse."""
    async with AsyncExitStack() as stack:
        for hook in startup.HOOKS:
            await stack.enter_async_context(hook(state))
        yield
