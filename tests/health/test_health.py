"""Liveness and readiness, including 503 when a store is down (and nothing internal leaks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.core.config import Settings
from app.main import create_app
from tests.support import StateApp


async def call(settings: Settings, path: str) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=StateApp(app, state))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get(path)


async def test_liveness(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json()["success"] is True
    assert r.json()["result"] == {"status": "ok"}
    assert r.headers["x-request-id"]


async def test_readiness_up(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/health")
    assert r.status_code == 200
    checks = r.json()["result"]["checks"]
    assert checks["database"]["status"] == "up"
    assert checks["redis"]["status"] == "up"


async def test_readiness_503_when_redis_down(make_settings: Callable[..., Settings]) -> None:
    r = await call(make_settings(redis_url="redis://127.0.0.1:1/0"), "/api/v1/health")
    assert r.status_code == 503
    body = r.json()
    assert body["error"]["code"] == "DEPENDENCY_UNAVAILABLE"
    assert body["error"]["details"]["checks"]["redis"]["status"] == "down"
    assert body["error"]["details"]["checks"]["database"]["status"] == "up"
    assert "127.0.0.1" not in r.text and "refused" not in r.text.lower()
    # Liveness never touches a dependency.
    assert (
        await call(make_settings(redis_url="redis://127.0.0.1:1/0"), "/health")
    ).status_code == 200


async def test_readiness_503_when_database_down(make_settings: Callable[..., Settings]) -> None:
    url = "postgresql+asyncpg://postgres:pw-not-shown@127.0.0.1:1/none"
    r = await call(make_settings(database_url=url), "/api/v1/health")
    assert r.status_code == 503
    details: dict[str, Any] = r.json()["error"]["details"]
    assert details["checks"]["database"]["status"] == "down"
    assert "pw-not-shown" not in r.text and ":1/" not in r.text
