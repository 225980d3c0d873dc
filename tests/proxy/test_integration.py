"""The proxy inside the real application (`create_app`): middleware stack, routing order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from app import startup
from app.core.config import Settings
from app.main import create_app
from app.proxy.router import ProxyRoute, include_proxy
from app.proxy.state import STATE_KEY, build_proxy_state
from app.registry.schema import RegistryConfig
from tests.proxy.conftest import (
    Fakes,
    StaticProvider,
    bearer,
    default_registry,
    lean_app,
    signed_in,
)
from tests.support import StateApp, free_port


@pytest.fixture
async def real_app(
    settings: Settings, fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    for fake in fakes.all():
        fake.reset()
    # The metrics sampler can swallow its cancellation when shutdown catches it mid-SCAN, and
    # then the lifespan waits out its 30 s sleep; it has nothing to do with the proxy.
    monkeypatch.setattr(
        startup, "HOOKS", [hook for hook in startup.HOOKS if hook.__name__ != "metrics_sampler"]
    )
    app = create_app(settings)
    if not any(isinstance(route, ProxyRoute) for route in app.router.routes):
        include_proxy(app, settings)  # until app/routers.py mounts it
    registry = RegistryConfig.model_validate(default_registry(fakes, free_port(), free_port()))
    providers: dict[str, Any] = {name: StaticProvider() for name in registry.services}
    async with AsyncExitStack() as stack:
        state = await stack.enter_async_context(app.router.lifespan_context(app))
        # The start-up hook built one from config/services.yaml: this one is for the fakes.
        await state[STATE_KEY].aclose()
        state[STATE_KEY] = build_proxy_state(registry, providers, settings)
        stack.push_async_callback(state[STATE_KEY].aclose)
        await stack.enter_async_context(signed_in(state))
        transport = httpx.ASGITransport(app=StateApp(app, state), client=("127.0.0.1", 5000))
        client = httpx.AsyncClient(transport=transport, base_url="http://studio.test")
        await stack.enter_async_context(client)
        yield client


async def test_proxied_json_is_enveloped_once(real_app: httpx.AsyncClient, fakes: Fakes) -> None:
    r = await real_app.get("/api/v1/zen/hello?q=1", headers=bearer("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "message", "error", "result"}
    assert body["result"]["path"] == "/hello"
    assert body["result"]["query"] == "q=1"
    assert r.headers["x-request-id"]
    assert len(fakes.zen.calls("/hello")) == 1


async def test_errors_and_raw_bodies_through_the_real_stack(real_app: httpx.AsyncClient) -> None:
    r = await real_app.get("/api/v1/nexus/v2/jobs/1/progress", headers=bearer("admin"))
    assert "success" not in r.json()  # envelope: false is not re-wrapped by the safety net
    r = await real_app.get("/api/v1/nexus/nope", headers=bearer("admin"))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "ROUTE_NOT_FOUND"
    r = await real_app.get("/api/v1/unknown/x", headers=bearer("admin"))
    assert r.json()["error"]["code"] == "SERVICE_NOT_FOUND"
    r = await real_app.get("/api/v1/zen/text", headers=bearer("admin"))
    assert r.text == "plain text from zen"


async def test_studio_routes_under_the_prefix_are_not_shadowed(
    real_app: httpx.AsyncClient,
) -> None:
    r = await real_app.get("/api/v1/health")
    assert r.status_code in (200, 503)
    assert "checks" in (r.json()["result"] or r.json()["error"]["details"])
    r = await real_app.get("/api/v1/auth/login")  # a POST route: 405, not SERVICE_NOT_FOUND
    assert r.status_code == 405


async def test_proxied_requests_take_the_fast_lane_with_the_same_edge(
    real_app: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane skips Starlette's and FastAPI's layers, not Studio's: same headers, and a crash
    inside the proxy is still the 500 envelope with a request id."""
    from app.proxy import forwarder
    from app.runtime.lane import StudioApp

    r = await real_app.get("/api/v1/zen/hello", headers=bearer("admin"))
    assert r.status_code == 200, r.text
    app = real_app._transport.app.app  # type: ignore[attr-defined]
    assert isinstance(app, StudioApp) and app._lane is not None  # served by the lane
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-request-id"]

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(forwarder, "forward", crash)
    r = await real_app.get("/api/v1/zen/hello", headers=bearer("admin"))
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "INTERNAL_ERROR"
    assert r.headers["x-request-id"] and r.headers["x-content-type-options"] == "nosniff"


def test_the_lean_app_has_the_middleware_of_create_app_in_order(settings: Settings) -> None:
    """The live suites' app (tests/proxy/conftest.py) sends proxied requests through the same
    layers as production's, in the same order, and takes the same fast lane."""
    real = create_app(settings)
    registry: RegistryConfig = real.state.registry
    lean = lean_app(settings, registry, {})
    assert [m.cls for m in lean.user_middleware] == [m.cls for m in real.user_middleware]
    for ours, theirs in zip(lean.user_middleware, real.user_middleware, strict=True):
        assert ours.kwargs == theirs.kwargs, ours.cls
    assert type(lean) is type(real)
    assert (lean._proxy_route is None) == (real._proxy_route is None)  # type: ignore[attr-defined]
