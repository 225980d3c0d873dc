"""Real fake downstreams on loopback and a uvicorn-served Studio in front of them.

The Studio app here is built like `create_app` (same app class, middleware in the same order,
handlers and proxy route) and served with the HTTP protocol of `studio serve`, around a
lifespan state without database: production's auth state on the run's Redis (tests/services.py)
under a key prefix of its own, production's upstream client, and the registry and credential
providers built in the test. The test principals sign in as login does: a session in the
session store and an access token from the token service.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.audit.service import AuditContext
from app.auth.dependencies import build_auth_state
from app.auth.login import open_session
from app.auth.session_data import Grants
from app.core import handlers
from app.core.config import Settings
from app.core.envelope import EnvelopeResponse
from app.core.redis import close_redis, create_redis
from app.credentials.base import BasicCredentials, CredentialProvider
from app.identity.principal import Principal
from app.main import install_middleware
from app.proxy.client import UpstreamClient
from app.proxy.router import include_proxy
from app.proxy.state import STATE_KEY, ProxyState, build_proxy_state, default_client
from app.registry.schema import RegistryConfig, ServiceConfig
from app.runtime.lane import StudioApp
from tests.conftest import RUN_ID, TEST_SECRET
from tests.fakes.server import FakeService, make_service, serve_refusing_after_accept
from tests.support import free_port, live_server, refusing_port, serve_studio

SERVICE_USER = "svc"
SERVICE_PASSWORD = "svc-pass"
JSON_CAP = 1024 * 1024

# Who signs in for each test; the session id a principal gets is the one sign-in gives.
PRINCIPALS = {
    "admin": Principal(
        "u-admin", "admin@example.com", "s-admin", ("admin", "editor"), frozenset({"*"})
    ),
    "viewer": Principal(
        "u-viewer",
        "viewer@example.com",
        "s-viewer",
        ("viewer",),
        frozenset({"nexus:read", "zen:chat"}),
    ),
    "nobody": Principal("u-nobody", "nobody@example.com", "s-nobody", (), frozenset()),
}

# Each signed-in principal's access token, while its sessions live (see `signed_in`).
_TOKENS: dict[str, str] = {}


def token(name: str) -> str:
    """The access token of the signed-in principal `name`; any other name is sent as it is,
    which Studio refuses as a malformed token."""
    return _TOKENS.get(name, name)


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(name)}"}


@asynccontextmanager
async def signed_in(state: Mapping[str, Any]) -> AsyncIterator[dict[str, str]]:
    """Sign every `PRINCIPALS` entry in to the app whose lifespan state is `state`, as login
    does once the password is checked (a session with its grants, a token pair); yields the
    access tokens and revokes the sessions after."""
    auth = state["auth"]
    ctx = AuditContext(client_ip="127.0.0.1", user_agent="tests/proxy")
    principals = dict(PRINCIPALS)
    minted: dict[str, str] = {}
    for name, who in principals.items():
        grants = Grants(list(who.roles), sorted(who.permissions), 0)
        pair = await open_session(auth, who.user_id, who.email, grants, ctx)
        minted[name] = pair.access_token
    _TOKENS.update(minted)
    try:
        yield minted
    finally:
        _TOKENS.clear()
        for who in principals.values():
            await auth.sessions.revoke_all(who.user_id)


class StaticProvider:
    """Fixed credentials."""

    def __init__(self, username: str = SERVICE_USER, password: str = SERVICE_PASSWORD) -> None:
        self.creds = BasicCredentials(username, password)
        self.refreshes = 0

    async def get(self) -> BasicCredentials:
        return self.creds

    async def refresh(self) -> BasicCredentials:
        self.refreshes += 1
        return self.creds


class RotatingProvider:
    """A cache of the fake's password: stale until `refresh` reads the current one."""

    def __init__(self, source: FakeService) -> None:
        self.source = source
        self.cached = BasicCredentials(SERVICE_USER, source.password or "")
        self.refreshes = 0

    async def get(self) -> BasicCredentials:
        return self.cached

    async def refresh(self) -> BasicCredentials:
        self.refreshes += 1
        self.cached = BasicCredentials(SERVICE_USER, self.source.password or "")
        return self.cached


class BrokenProvider:
    async def get(self) -> BasicCredentials:
        raise RuntimeError("SSM is down")

    async def refresh(self) -> BasicCredentials:
        raise RuntimeError("SSM is down")


class ManualClock:
    """Monotonic time that tests can push forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Fakes:
    nexus: FakeService
    zen: FakeService
    agents: FakeService
    ingestion: FakeService
    rot: FakeService
    hung: FakeService
    urls: dict[str, str]
    broken_port: int

    def all(self) -> list[FakeService]:
        return [self.nexus, self.zen, self.agents, self.ingestion, self.rot, self.hung]


@pytest.fixture(scope="session")
async def fakes() -> AsyncIterator[Fakes]:
    services = {
        name: make_service(name, SERVICE_USER, SERVICE_PASSWORD)
        for name in ("nexus", "zen", "agents", "ingestion")
    }
    services["rot"] = FakeService("rot", SERVICE_USER, SERVICE_PASSWORD)
    services["hung"] = FakeService("hung")
    broken, broken_port = await serve_refusing_after_accept()
    urls: dict[str, str] = {}
    async with _serve_all(services, urls):
        yield Fakes(**services, urls=urls, broken_port=broken_port)
    broken.close()
    await broken.wait_closed()


@asynccontextmanager
async def _serve_all(services: dict[str, FakeService], urls: dict[str, str]) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for name, app in services.items():
            urls[name] = await stack.enter_async_context(live_server(app))
        yield


def service(base_url: str, mode: str = "wildcard", **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_url": base_url,
        "mode": mode,
        "permissions": {"read": "svc:read", "write": "svc:write"},
        "timeouts": {"connect": 2, "read": 10, "write": 10, "pool": 5},
    }
    config.update(extra)
    return config


def default_registry(fakes: Fakes, dead_port: int, phoenix_port: int) -> dict[str, Any]:
    u = fakes.urls
    return {
        "services": {
            "nexus": service(
                u["nexus"],
                "explicit",
                permissions={"read": "nexus:read", "write": "nexus:write"},
                routes=[
                    {"method": "GET", "path": "/documents"},
                    {"method": "POST", "path": "/documents"},
                    {"method": "GET", "path": "/documents/stats", "permission": "nexus:stats"},
                    {"method": "GET", "path": "/documents/{document_id}"},
                    {"method": "DELETE", "path": "/documents/{document_id}"},
                    {"method": "GET", "path": "/files/{size}"},
                    {"method": "GET", "path": "/v2/jobs/{job_id}/progress", "envelope": False},
                    {"method": "GET", "path": "/status/{code}", "envelope": False},
                    {"method": "GET", "path": "/enveloped"},
                ],
            ),
            "zen": service(u["zen"], permissions={"read": "zen:chat", "write": "zen:chat"}),
            "agents": service(u["agents"] + "/orchestrator"),
            "ingestion": service(u["ingestion"], max_body_bytes=200 * 1024 * 1024),
            "small": service(u["ingestion"], max_body_bytes=1024 * 1024),
            "dead": service(
                f"http://127.0.0.1:{dead_port}",
                circuit_breaker={"failure_threshold": 3, "open_seconds": 30},
            ),
            "phoenix": service(
                f"http://127.0.0.1:{phoenix_port}",
                circuit_breaker={"failure_threshold": 2, "open_seconds": 10},
            ),
            "slow": service(
                u["zen"],
                timeouts={"connect": 2, "read": 0.5, "write": 5, "pool": 5},
                circuit_breaker={"failure_threshold": 100, "open_seconds": 1},
            ),
            "broken": service(f"http://127.0.0.1:{fakes.broken_port}"),
            "rot": service(u["rot"]),
            "noauth": service(u["hung"]),
            "creds": service(u["zen"]),
            "hung": service(
                u["hung"],
                max_connections=2,
                timeouts={"connect": 2, "read": 30, "write": 5, "pool": 30},
            ),
            "quota": service(u["zen"], quota={"limit": 2, "window": 60}),
        }
    }


@dataclass
class Studio:
    url: str
    http: httpx.AsyncClient
    proxy: ProxyState
    clock: ManualClock
    fakes: Fakes
    providers: dict[str, CredentialProvider]
    phoenix_port: int

    async def get(self, path: str, who: str | None = "admin", **kw: Any) -> httpx.Response:
        return await self.request("GET", path, who, **kw)

    async def request(
        self, method: str, path: str, who: str | None = "admin", **kw: Any
    ) -> httpx.Response:
        headers = {**(bearer(who) if who else {}), **kw.pop("headers", {})}
        return await self.http.request(method, "/api/v1" + path, headers=headers, **kw)


def lean_app(settings: Settings, registry: RegistryConfig, state: dict[str, Any]) -> FastAPI:
    """`create_app` without the database: its app class, handlers, proxy route and middleware
    in its order (test_integration checks the order), serving the lifespan state `state`."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # Started as the lifespan's `session_cache` hook does (that hook also feeds /metrics).
        cache = state["session_store"].cache
        if cache is not None:
            cache.start()
        try:
            yield state
        finally:
            if cache is not None:
                await cache.stop()

    app = StudioApp(
        default_response_class=EnvelopeResponse, lifespan=lifespan, redirect_slashes=False
    )
    app.state.settings = settings
    app.state.registry = registry
    handlers.install(app)
    include_proxy(app, settings)
    install_middleware(app, settings, registry)
    if settings.runtime_fast_lane:
        app.enable_proxy_lane()
    return app


ClientWrapper = Callable[[str, UpstreamClient], UpstreamClient]


@pytest.fixture
def proxy_settings(redis_url: str | None, tmp_path: Path) -> Settings:
    """The run's Redis (production's in-process stand-in without one) under a key prefix of
    this test's, which the `redis_url` fixture removes at the end of the run at the latest."""
    return Settings(
        _env_file=None,
        environment="dev",
        log_dir=tmp_path / "logs",
        redis_url=redis_url,
        redis_key_prefix=f"studio-test-{RUN_ID}:proxy-{uuid.uuid4().hex[:8]}:",
        jwt_secret_key=TEST_SECRET,
    )


@pytest.fixture
def start_studio(fakes: Fakes, proxy_settings: Settings) -> Callable[..., Any]:
    """`async with start_studio(...) as studio`: a live Studio in front of the fakes, with the
    test principals signed in. `wrap(name, client)` may wrap each service's client."""
    settings = proxy_settings

    @asynccontextmanager
    async def start(
        overrides: dict[str, dict[str, Any]] | None = None,
        wrap: ClientWrapper | None = None,
    ) -> AsyncIterator[Studio]:
        for fake in fakes.all():
            fake.reset()
            if fake.username is not None:
                fake.set_password(SERVICE_PASSWORD)
        async with AsyncExitStack() as stack:
            # `dead` refuses for as long as the test runs; `phoenix` is served later by the test.
            dead_port = stack.enter_context(refusing_port())
            phoenix_port = free_port()
            tree = default_registry(fakes, dead_port, phoenix_port)
            for name, extra in (overrides or {}).items():
                tree["services"][name] = {**tree["services"].get(name, {}), **extra}
            registry = RegistryConfig.model_validate(tree)
            providers: dict[str, CredentialProvider] = {
                name: StaticProvider() for name in registry.services if name != "noauth"
            }
            providers["rot"] = RotatingProvider(fakes.rot)
            providers["creds"] = BrokenProvider()
            clock = ManualClock()

            def client_factory(name: str, config: ServiceConfig) -> UpstreamClient:
                client = default_client(name, config)
                return wrap(name, client) if wrap else client

            proxy = build_proxy_state(
                registry,
                providers,
                settings,
                client_factory=client_factory,
                json_cap=JSON_CAP,
                clock=clock,
            )
            stack.push_async_callback(proxy.aclose)
            # As the lifespan does: the session cache subscribes on a small client of its own.
            redis = create_redis(settings)
            stack.push_async_callback(close_redis, redis)
            listener = redis
            if settings.session_cache_seconds > 0 and not settings.redis_in_process:
                listener = create_redis(settings, max_connections=2)
                stack.push_async_callback(close_redis, listener)
            stack.push_async_callback(forget_keys, redis, settings.redis_key_prefix)
            state: dict[str, Any] = {
                "settings": settings,
                "redis": redis,
                "registry": registry,
                "credential_providers": providers,
                **build_auth_state(settings, redis, listener).request_state(),
                STATE_KEY: proxy,
            }
            await stack.enter_async_context(signed_in(state))
            app = lean_app(settings, registry, state)
            url = await stack.enter_async_context(serve_studio(app, settings))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            yield Studio(url, http, proxy, clock, fakes, providers, phoenix_port)

    return start


async def forget_keys(redis: Any, prefix: str) -> None:
    """Delete every key under `prefix` (sessions, rate-limit buckets)."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def studio(start_studio: Callable[..., Any]) -> AsyncIterator[Studio]:
    async with start_studio() as running:
        yield running


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


Waiter = Callable[[Callable[[], bool]], Awaitable[bool]]
