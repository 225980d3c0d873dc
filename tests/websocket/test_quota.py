"""The per-user socket cap in Redis: the cap, leases that run out, and Redis down."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.config import Settings
from app.core.errors import DependencyUnavailable
from app.ratelimit.errors import RateLimited
from app.websocket.quota import SocketQuota


async def test_the_cap_is_per_user_and_a_released_slot_is_free_again(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    redis: Any = Redis.from_url(redis_url)
    quota = SocketQuota(redis, f"{make_settings().redis_key_prefix}q1", limit=2, lease=30)
    try:
        await quota.take("u1", "a")
        await quota.take("u1", "b")
        with pytest.raises(RateLimited) as refused:
            await quota.take("u1", "c")
        assert refused.value.details == {"max_sockets": 2}
        await quota.take("u2", "a")  # another user's sockets do not count
        await quota.release("u1", "a")
        await quota.take("u1", "c")
    finally:
        await redis.aclose()


async def test_a_renewed_lease_outlives_an_unrenewed_one(
    make_settings: Callable[..., Settings], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = time.time()
    clock = [start]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # the lease clock, not the loop's
    redis: Any = Redis.from_url(redis_url)
    quota = SocketQuota(redis, f"{make_settings().redis_key_prefix}q2", limit=2, lease=30)
    try:
        await quota.take("u1", "kept")
        await quota.take("u1", "dropped")
        clock[0] = start + 20
        await quota.renew("u1", "kept")
        await quota.renew("u1", "never-taken")  # renewing does not take a slot
        clock[0] = start + 40
        # "dropped" ran out at +30, "kept" holds until +50: one slot is free, not two
        await quota.take("u1", "new")
        with pytest.raises(RateLimited):
            await quota.take("u1", "one-too-many")
    finally:
        await redis.aclose()


async def test_redis_down_refuses_the_upgrade_and_renew_and_release_pass() -> None:
    redis: Any = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    quota = SocketQuota(redis, "studio:", limit=1, lease=30)
    try:
        with pytest.raises(DependencyUnavailable):
            await quota.take("u1", "a")
        await quota.renew("u1", "a")  # left to the next renewal
        await quota.release("u1", "a")  # left to the lease running out
    finally:
        await redis.aclose()
