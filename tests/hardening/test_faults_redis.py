"""Redis down or frozen: auth, proxy and readiness fail closed (503), then recover unaided."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.hardening.conftest import API, assert_error, login, user
from tests.harness.servers import RedisServer
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


async def _cache_noticed(state: dict[str, Any]) -> None:
    """The session cache stops serving once its subscriber sees Redis gone: at once on a closed
    connection, within its heartbeat window (3 s) when Redis is frozen. Studio runs in this
    process here, so the test yields until then; a separate client never finds it otherwise."""
    cache = state["session_store"].cache
    await wait_until(lambda: not cache.live, what="session cache off")


async def _all_fail_closed(client: Any, email: str, headers: dict[str, str]) -> None:
    assert_error(await client.get(f"{API}/auth/me", headers=headers), 503, "DEPENDENCY_UNAVAILABLE")
    assert_error(await login(client, email), 503, "DEPENDENCY_UNAVAILABLE")
    assert_error(
        await client.post(
            f"{API}/auth/register", json={"email": f"x{email}", "password": "long-enough-1"}
        ),
        503,
        "DEPENDENCY_UNAVAILABLE",
    )
    assert_error(
        await client.get(f"{API}/zen/echo", headers=headers), 503, "DEPENDENCY_UNAVAILABLE"
    )
    ready = assert_error(await client.get(f"{API}/health"), 503, "DEPENDENCY_UNAVAILABLE")
    assert ready["error"]["details"]["checks"]["redis"]["status"] == "down"
    assert ready["error"]["details"]["checks"]["database"]["status"] == "up"
    assert (await client.get("/health")).status_code == 200  # liveness touches nothing


async def test_redis_stopped_fails_closed_and_recovers(
    studio: Callable[..., Any], redis_server: RedisServer
) -> None:
    async with studio(redis_url=redis_server.url) as (client, state):
        email, headers = await user(client, state, "admin")
        assert (await client.get(f"{API}/zen/echo", headers=headers)).status_code == 200

        redis_server.stop()
        await _cache_noticed(state)
        await _all_fail_closed(client, email, headers)

        redis_server.start()  # same port, empty: no persistence, the sessions are gone
        assert (await client.get(f"{API}/health")).status_code == 200
        assert_error(await client.get(f"{API}/auth/me", headers=headers), 401, "SESSION_REVOKED")
        fresh = await login(client, email)
        assert fresh.status_code == 200, fresh.text
        token = {"Authorization": f"Bearer {fresh.json()['result']['access_token']}"}
        assert (await client.get(f"{API}/zen/echo", headers=token)).status_code == 200


async def test_redis_frozen_fails_closed_in_bounded_time_and_recovers(
    studio: Callable[..., Any], redis_server: RedisServer
) -> None:
    async with studio(redis_url=redis_server.url) as (client, state):
        email, headers = await user(client, state, "admin")
        assert (await client.get(f"{API}/auth/me", headers=headers)).status_code == 200  # cached
        redis_server.pause()  # SIGSTOP: connections hang instead of being refused
        try:
            await _cache_noticed(state)
            # Answered while Redis is still frozen (a hang would end in the client's timeout).
            assert_error(
                await client.get(f"{API}/auth/me", headers=headers), 503, "DEPENDENCY_UNAVAILABLE"
            )
            ready = await client.get(f"{API}/health")
            assert_error(ready, 503, "DEPENDENCY_UNAVAILABLE")
        finally:
            redis_server.resume()
        # Same process, data intact: the old token works again, nothing was lost.
        me = await client.get(f"{API}/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        assert (await client.get(f"{API}/zen/echo", headers=headers)).status_code == 200
        assert (await client.get(f"{API}/health")).status_code == 200
        assert (await login(client, email)).status_code == 200


async def test_redis_frozen_fails_closed_while_it_is_frozen(
    studio: Callable[..., Any], redis_server: RedisServer
) -> None:
    """A frozen Redis gets a 503 while it is still frozen, without waiting for the session
    cache to notice: a timed-out command is not retried (how long it takes is a benchmark's
    business; the client's 30 s timeout fails a request that hangs)."""
    async with studio(redis_url=redis_server.url) as (client, state):
        _, headers = await user(client, state, "admin")
        redis_server.pause()
        try:
            r = await client.get(f"{API}/auth/me", headers=headers)
        finally:
            redis_server.resume()
        assert_error(r, 503, "DEPENDENCY_UNAVAILABLE")
