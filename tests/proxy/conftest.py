"""Real fake downstreams on loopback and a uvicorn-served Studio in front of them.

The Studio app here is built like `create_app` (same middleware, handlers and proxy route)
but without database or auth: the forwarder's principal lookup is replaced by bearer tokens
naming test principals, and the registry and credential providers are built in the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import fakeredis
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from app.auth.principal import Principal
from app.core import handlers
from app.core.config import Settings
from app.core.envelope import EnvelopeResponse
from app.core.errors import TokenInvalid, Unauthorized
from app.core.middleware import EnvelopeMiddleware, RequestContextMiddleware
from app.credentials.base import BasicCredentials, CredentialProvider
from app.proxy import forwarder
from app.proxy.client import UpstreamClient
from app.proxy.router import include_proxy
from app.proxy.state import STATE_KEY, ProxyState, build_proxy_state
from app.ratelimit.service import RateLimiter
from app.registry.schema import RegistryConfig, ServiceConfig
from tests.fakes.server import FakeService, make_service, serve_refusing_after_accept
from tests.support import free_port, live_server

SERVICE_USER = "svc"
SERVICE_PASSWORD = "svc-pass"
JSON_CAP = 1024 * 1024

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


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


async def fake_authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized()
    principal = PRINCIPALS.get(header[7:])
    if principal is None:
        raise TokenInvalid()
    request.scope["state"]["user_id"] = principal.user_id
    return principal


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


@pytest.fixture(autouse=True)
def _principals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forwarder, "authenticate", fake_authenticate)


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


def lean_app(settings: Settings, state: dict[str, Any]) -> FastAPI:
    """Studio's middleware, handlers and proxy route around a fixed lifespan state."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield state

    app = FastAPI(default_response_class=EnvelopeResponse, lifespan=lifespan)
    handlers.install(app)
    include_proxy(app, settings)
    app.add_middleware(EnvelopeMiddleware, raw_paths=("/openapi.json", "/metrics"))
    app.add_middleware(RequestContextMiddleware, trusted_proxies=settings.trusted_networks)
    return app


ClientWrapper = Callable[[str, UpstreamClient], UpstreamClient]


@pytest.fixture
def proxy_settings(tmp_path: Any) -> Settings:
    return Settings(_env_file=None, environment="dev", log_dir=tmp_path / "logs")  # type: ignore[call-arg]


@pytest.fixture
def start_studio(fakes: Fakes, proxy_settings: Settings) -> Callable[..., Any]:
    """`async with start_studio(...) as studio`: a live Studio in front of the fakes."""

    @asynccontextmanager
    async def start(
        overrides: dict[str, dict[str, Any]] | None = None,
        wrap: ClientWrapper | None = None,
    ) -> AsyncIterator[Studio]:
        for fake in fakes.all():
            fake.reset()
            if fake.username is not None:
                fake.set_password(SERVICE_PASSWORD)
        phoenix_port = free_port()
        tree = default_registry(fakes, free_port(), phoenix_port)
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
            from app.proxy.client import HttpcoreUpstreamClient

            client: UpstreamClient = HttpcoreUpstreamClient.for_service(config)
            return wrap(name, client) if wrap else client

        proxy = build_proxy_state(
            registry,
            providers,
            proxy_settings,
            client_factory=client_factory,
            json_cap=JSON_CAP,
            clock=clock,
        )
        redis = fakeredis.FakeAsyncRedis()
        state = {
            "settings": proxy_settings,
            STATE_KEY: proxy,
            "rate_limiter": RateLimiter(redis, "proxy-test:"),
        }
        try:
            async with (
                serve_studio(lean_app(proxy_settings, state)) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as http,
            ):
                yield Studio(url, http, proxy, clock, fakes, providers, phoenix_port)
        finally:
            await proxy.aclose()
            await redis.aclose()

    return start


@pytest.fixture
async def studio(start_studio: Callable[..., Any]) -> AsyncIterator[Studio]:
    async with start_studio() as running:
        yield running


@asynccontextmanager
async def serve_studio(app: Any) -> AsyncIterator[str]:
    """Like `tests.support.live_server`, but uvicorn does not rewrite the client address from
    X-Forwarded-For (its default trusts loopback), so Studio's own rule is what is tested."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


Waiter = Callable[[Callable[[], bool]], Awaitable[bool]]
