"""Scale-out: two Studio processes share sessions and limits; a 3-node Redis Cluster works."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RUN_ID
from tests.hardening.conftest import ACCOUNT_PASSWORD, API, assert_error, login, overlay, user
from tests.hardening.processes import fakes_process, studio_env, studio_processes, wait_healthy
from tests.harness.servers import RedisCluster
from tests.support import free_port, refusing_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.services]


async def test_two_instances_share_sessions_and_keep_breakers_apart(
    database_url: str, redis_url: str | None, tmp_path: Path
) -> None:
    assert redis_url is not None
    breaker = overlay(
        tmp_path,
        zen={"circuit_breaker": {"failure_threshold": 2, "open_seconds": 60}},
    )
    with fakes_process(tmp_path) as urls, refusing_port() as zen_port:
        urls["ZEN_URL"] = f"http://127.0.0.1:{zen_port}"  # bound, never listening: zen is down
        env = studio_env(
            database_url, redis_url, f"studio-test-{RUN_ID}:scale-{uuid.uuid4().hex[:6]}:",
            tmp_path, SERVICE_OVERLAY_PATH=str(breaker), **urls,
        )  # fmt: skip
        ports = [free_port(), free_port()]
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        with studio_processes(env, ports, tmp_path):
            await asyncio.gather(wait_healthy(a), wait_healthy(b))
            async with httpx.AsyncClient(timeout=30) as http:
                email = f"scale-{uuid.uuid4().hex[:8]}@example.com"
                body = {"email": email, "password": ACCOUNT_PASSWORD}
                assert (await http.post(f"{a}{API}/auth/register", json=body)).status_code == 201
                tokens = (await http.post(f"{a}{API}/auth/login", json=body)).json()["result"]
                headers = {"Authorization": f"Bearer {tokens['access_token']}"}

                # A session opened on A is valid on B; logout on B ends it on A at once, though
                # A holds it in its session cache.
                assert (await http.get(f"{b}{API}/auth/me", headers=headers)).status_code == 200
                for _ in range(2):
                    assert (await http.get(f"{a}{API}/auth/me", headers=headers)).status_code == 200
                assert "studio_session_cache_entries 1.0" in (await http.get(f"{a}/metrics")).text
                assert (
                    await http.post(f"{b}{API}/auth/logout", headers=headers)
                ).status_code == 200
                assert_error(
                    await http.get(f"{a}{API}/auth/me", headers=headers), 401, "SESSION_REVOKED"
                )
                refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
                r = await http.post(f"{a}{API}/auth/refresh", headers=refresh)
                assert r.status_code == 401

                # Breakers are per instance: A opens its circuit, B still dials zen.
                await _grant_zen(database_url, email)
                tokens = (await http.post(f"{b}{API}/auth/login", json=body)).json()["result"]
                headers = {"Authorization": f"Bearer {tokens['access_token']}"}
                for _ in range(2):
                    assert_error(
                        await http.get(f"{a}{API}/zen/echo", headers=headers),
                        502,
                        "UPSTREAM_UNAVAILABLE",
                    )
                assert_error(
                    await http.get(f"{a}{API}/zen/echo", headers=headers), 503, "CIRCUIT_OPEN"
                )
                assert_error(
                    await http.get(f"{b}{API}/zen/echo", headers=headers),
                    502,
                    "UPSTREAM_UNAVAILABLE",
                )


async def _grant_zen(database_url: str, email: str) -> None:
    import asyncpg

    plain = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute(
            """INSERT INTO user_role (user_id, role_id)
               SELECT u.id, r.id FROM "user" u, role r WHERE u.email = $1 AND r.name = 'admin'
               ON CONFLICT DO NOTHING""",
            email,
        )
    finally:
        await conn.close()


@pytest.fixture
def cluster() -> Any:
    with RedisCluster() as started:
        yield started


async def test_sessions_and_exact_rate_limits_on_a_redis_cluster(
    studio: Callable[..., Any], cluster: RedisCluster
) -> None:
    async with studio(redis_url=cluster.url, rate_limit_login_attempts=5) as (client, state):
        email, headers = await user(client, state, "admin")  # login 1 of 5
        cache = state["session_store"].cache
        await wait_until(lambda: cache.live, what="session cache subscribed on the cluster")
        me = await client.get(f"{API}/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        assert (await client.get(f"{API}/zen/echo", headers=headers)).status_code == 200
        second = (await login(client, email)).json()["result"]  # login 2 of 5
        r = await client.post(
            f"{API}/auth/refresh", headers={"Authorization": f"Bearer {second['refresh_token']}"}
        )
        assert r.status_code == 200, r.text
        sessions = (await client.get(f"{API}/auth/sessions", headers=headers)).json()["result"]
        assert len(sessions["sessions"]) == 2
        assert (await client.post(f"{API}/auth/logout", headers=headers)).status_code == 200
        assert_error(await client.get(f"{API}/auth/me", headers=headers), 401, "SESSION_REVOKED")
        statuses = Counter(
            r.status_code
            for r in await asyncio.gather(
                *(login(client, email, "wrong-password-1") for _ in range(10))
            )
        )
        assert statuses == Counter({401: 3, 429: 7}), statuses
        assert (await client.get(f"{API}/health")).status_code == 200
