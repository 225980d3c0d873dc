"""Redis Sentinel failover: 503 while the master is gone, then the promoted replica serves."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.hardening.conftest import API, login, user
from tests.harness.servers import RedisSentinelGroup
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture
def sentinel() -> Iterator[RedisSentinelGroup]:
    with RedisSentinelGroup() as group:
        yield group


async def test_sentinel_failover_keeps_sessions_and_recovers(
    studio: Callable[..., Any], sentinel: RedisSentinelGroup
) -> None:
    async with studio(redis_url=sentinel.url) as (client, state):
        email, headers = await user(client, state, "admin")
        assert (await client.get(f"{API}/auth/me", headers=headers)).status_code == 200
        await asyncio.to_thread(sentinel.wait_replicated)  # the replica has the session
        sentinel.master.stop()
        # Studio runs in this process: let its session cache's subscriber see the loss, as it
        # does at once in a real deployment (the cached session is then no longer served).
        await wait_until(lambda: not state["session_store"].cache.live, what="session cache off")

        seen: Counter[tuple[int, str | None]] = Counter()
        deadline = time.monotonic() + 45
        while True:
            r = await client.get(f"{API}/auth/me", headers=headers)
            code = r.json()["error"]["code"] if r.status_code != 200 else None
            seen[(r.status_code, code)] += 1
            if r.status_code == 200:
                break
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.25)
        # During the failover Studio failed closed, and only that way.
        assert set(seen) <= {(503, "DEPENDENCY_UNAVAILABLE"), (200, None)}, seen
        sentinel.wait_promoted()
        # The session written before the failover survived on the promoted replica.
        assert (await client.get(f"{API}/zen/echo", headers=headers)).status_code == 200
        assert (await login(client, email)).status_code == 200
        assert (await client.get(f"{API}/health")).status_code == 200
