"""Pooled connections: idle ones are pinged before use, busy ones are trusted; a dead one
that was trusted answers 503."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import db
from app.core.config import Settings
from app.main import create_app
from tests.support import StateApp

pytestmark = pytest.mark.services


@pytest.fixture
async def engine(make_settings: Callable[..., Settings]) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(make_settings())
    yield engine
    await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    """End a server process from a connection outside the engine's pool."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_idle_dead_connection_is_replaced_before_use(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _backend_pid(engine)
    await _terminate(engine, first)
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle

    # The pooled connection is dead: the ping on checkout finds out, the pool replaces it and
    # the caller never sees an error.
    second = await _backend_pid(engine)
    assert second != first


async def test_recently_used_dead_connection_fails_once_then_the_pool_recovers(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 3600.0)  # nothing counts as idle: no ping
    first = await _backend_pid(engine)
    await _terminate(engine, first)

    # Trusted because it was in use a moment ago: the statement meets the dead connection, and
    # the error says the connection was invalidated (the app answers 503 for it).
    with pytest.raises(DBAPIError) as caught:
        await _backend_pid(engine)
    assert caught.value.connection_invalidated

    assert await _backend_pid(engine) != first


@pytest.mark.parametrize(("idle_after", "pings"), [(3600.0, 0), (0.0, 4)])
async def test_only_idle_connections_are_pinged(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, idle_after: float, pings: int
) -> None:
    calls: list[object] = []
    real = AsyncAdapt_asyncpg_connection.ping

    def counted(self: AsyncAdapt_asyncpg_connection) -> None:
        calls.append(self)
        real(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", idle_after)
    for _ in range(5):  # one pooled connection, reused: new on the first checkout only
        await _backend_pid(engine)
    assert len(calls) == pings


@pytest.mark.parametrize(
    ("invalidated", "status", "code"),
    [(True, 503, "DEPENDENCY_UNAVAILABLE"), (False, 500, "INTERNAL_ERROR")],
)
async def test_database_errors_in_routes(
    make_settings: Callable[..., Settings], invalidated: bool, status: int, code: str
) -> None:
    """A statement on a connection the server closed is a 503 to retry; any other driver
    error stays a 500 (and is logged as unhandled)."""
    app = create_app(make_settings())

    async def failing() -> None:
        raise DBAPIError("SELECT 1", None, Exception("boom"), connection_invalidated=invalidated)

    app.add_api_route("/api/v1/test-db-error", failing)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=StateApp(app, dict(state)), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/api/v1/test-db-error")
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code
    assert "boom" not in response.text
