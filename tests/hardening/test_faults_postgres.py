"""PostgreSQL down: logins fail with 503, live sessions keep proxying, all recovers unaided."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine
from tests.hardening.conftest import API, assert_error, login, user
from tests.harness.servers import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture
async def postgres() -> AsyncIterator[PostgresServer]:
    with PostgresServer() as server:
        conn = await asyncpg.connect(server.admin_url)
        try:
            await conn.execute('CREATE DATABASE "studio"')
        finally:
            await conn.close()
        engine = create_engine(Settings(_env_file=None, database_url=server.url("studio")))
        try:
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()
        yield server


async def test_postgres_down_proxy_still_works_then_all_recovers(
    studio: Callable[..., Any], postgres: PostgresServer
) -> None:
    async with studio(database_url=postgres.url("studio")) as (client, state):
        email, headers = await user(client, state, "admin")
        postgres.stop()

        # Proxying needs only the Redis session: it keeps working.
        r = await client.get(f"{API}/zen/echo", headers=headers)
        assert r.status_code == 200, r.text
        ready = assert_error(await client.get(f"{API}/health"), 503, "DEPENDENCY_UNAVAILABLE")
        assert ready["error"]["details"]["checks"]["database"]["status"] == "down"
        assert "127.0.0.1" not in str(ready) and "postgres" not in str(ready).lower()
        # Logging in needs the user row: it fails (the status is pinned by the test below).
        assert (await login(client, email)).status_code >= 500

        postgres.start()
        assert (await client.get(f"{API}/health")).status_code == 200
        assert (await login(client, email)).status_code == 200
        assert (await client.get(f"{API}/auth/me", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/auth/login", None),
        ("get", "/auth/me", None),
        ("post", "/auth/register", {"email": "new-pg-down@example.com", "password": "long-enough"}),
        ("get", "/admin/users", None),
        ("get", "/admin/audit", None),
        ("post", "/auth/logout", None),
    ],
)
async def test_postgres_down_database_routes_are_503_not_500(
    studio: Callable[..., Any],
    postgres: PostgresServer,
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    async with studio(database_url=postgres.url("studio")) as (client, state):
        _, headers = await user(client, state, "admin")
        postgres.stop()
        kwargs: dict[str, Any] = {"headers": headers}
        if path == "/auth/login":
            kwargs = {"json": {"email": "someone@example.com", "password": "long-enough"}}
        if body is not None:
            kwargs["json"] = body
        r = await getattr(client, method)(f"{API}{path}", **kwargs)
        if path == "/auth/logout":
            # Logout lives in Redis; its audit row is best effort: the session still ends.
            assert r.status_code == 200, r.text
        else:
            assert_error(r, 503, "DEPENDENCY_UNAVAILABLE")
        postgres.start()
