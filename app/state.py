"""`StudioState`: everything the lifespan builds, as one typed object.

The lifespan builds it, the start-up hooks (`app/startup.py`) complete it, and each request
sees it as its `request.state` through `request_state()` (Starlette copies that mapping into
every request). Routes read it through the `Annotated` dependencies of each domain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.dependencies import AuthState
from app.core.config import Settings
from app.core.redis import RedisClient
from app.credentials.base import CredentialProvider
from app.discovery import dependencies as discovery
from app.discovery.checker import HealthChecker
from app.proxy.client import ClientFactory
from app.proxy.router import UPGRADE_KEY
from app.proxy.state import STATE_KEY, ProxyState
from app.registry import dependencies as registry
from app.registry.live import LiveRegistry, LoadedRegistry, ReloadOutcome
from app.websocket import entry as websocket_entry
from app.websocket import front as websocket
from app.websocket.front import Front

# Called after a reload swapped the registry in (the app's OpenAPI schema, body limits).
RegistryListener = Callable[[LoadedRegistry], None]


@dataclass(slots=True)
class StudioState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: RedisClient
    registry: LiveRegistry  # the registry serving now; a reload replaces its `current`
    auth: AuthState
    tracer_provider: Any = None  # OpenTelemetry's, when tracing is on
    credential_providers: Mapping[str, CredentialProvider] | None = None
    client_factory: ClientFactory | None = None  # each service's pool, also after a reload
    proxy: ProxyState | None = None
    health_checker: HealthChecker | None = None
    registry_listeners: list[RegistryListener] = field(default_factory=list)
    reload: Callable[[str], Awaitable[ReloadOutcome]] | None = None  # while the app runs
    websockets: Front | None = None  # the WebSocket relay's shared parts

    def request_state(self) -> dict[str, Any]:
        """The mapping each request gets as its state (keys are the getters' contract)."""
        state: dict[str, Any] = {
            "settings": self.settings,
            "engine": self.engine,
            "sessions": self.sessions,
            "redis": self.redis,
            registry.STATE_KEY: self.registry,
            **self.auth.request_state(),
        }
        if self.proxy is not None:
            state[STATE_KEY] = self.proxy
        if self.health_checker is not None:
            state[discovery.STATE_KEY] = self.health_checker
        if self.websockets is not None:
            state[websocket.STATE_KEY] = self.websockets
            state[UPGRADE_KEY] = websocket_entry.serve
        return state
