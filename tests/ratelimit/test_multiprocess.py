"""The login limit holds across processes: two real Studio servers share one Redis budget."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.auth.helpers import AUTH, PASSWORD, new_email
from tests.conftest import RUN_ID, TEST_SECRET
from tests.hardening.processes import studio_processes, wait_healthy
from tests.support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.services]
LIMIT = 6
ROOT = Path(__file__).resolve().parents[2]  # the project: app.main importable from here


async def test_login_limit_is_exact_across_two_processes(
    database_url: str, redis_url: str | None, tmp_path: Path
) -> None:
    if redis_url is None or database_url.startswith("sqlite"):
        pytest.skip("needs real PostgreSQL and Redis (present whenever STUDIO_REQUIRE_SERVICES=1)")
    prefix = f"studio-test-{RUN_ID}:mp-{uuid.uuid4().hex[:8]}:"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT_", "REDIS_"))},
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "dev",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "JWT_SECRET_KEY": TEST_SECRET,
        "RATE_LIMIT_LOGIN_ATTEMPTS": str(LIMIT),
        "RATE_LIMIT_LOGIN_WINDOW": "120",
        "RATE_LIMIT_REGISTER_ATTEMPTS": "100",
        "RUN_MIGRATIONS": "false",
        "SERVICE_HEALTH_CHECK_ENABLED": "false",
        "SERVICE_OVERLAY_PATH": str(ROOT / "config" / "local.yml"),
        "LOG_DIR": str(tmp_path / "logs"),
        "LOG_LEVEL": "WARNING",
    }
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]

    with studio_processes(env, ports, tmp_path):
        await asyncio.gather(*(wait_healthy(b) for b in bases))
        async with httpx.AsyncClient(timeout=30.0) as http:
            email = new_email("mp")
            created = await http.post(
                f"{bases[0]}{AUTH}/register", json={"email": email, "password": PASSWORD}
            )
            assert created.status_code == 201, created.text

            async def attempt(i: int) -> httpx.Response:
                # Alternate the processes; one attempt has the right password, the rest not.
                who = email if i == 0 else new_email("mp-spray")
                password = PASSWORD if i == 0 else "wrong password"
                return await http.post(
                    f"{bases[i % 2]}{AUTH}/login", json={"email": who, "password": password}
                )

            responses = await asyncio.gather(*(attempt(i) for i in range(4 * LIMIT)))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 401, 429}, statuses
    assert statuses[200] + statuses[401] == LIMIT, statuses
    assert statuses[429] == 3 * LIMIT, statuses
    for r in responses:
        assert r.headers["ratelimit-limit"] == str(LIMIT)
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "RATE_LIMITED"
            assert r.headers["retry-after"].isdigit()
    # Both processes answered, and both refused some: the budget was shared, not per process.
    per_process = Counter((str(r.url).split("/api")[0], r.status_code) for r in responses)
    for base in bases:
        assert per_process[(base, 429)] > 0, per_process
    # And Redis holds exactly LIMIT admitted attempts for this client address.
    client = Redis.from_url(redis_url)
    try:
        assert await client.zcard(f"{prefix}rl:{{login-ip:127.0.0.1}}") == LIMIT
    finally:
        await client.aclose()
