"""`RateLimiter.hit` against the real Redis: exact counts, headers, windows, fail closed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.core.errors import DependencyUnavailable
from app.ratelimit.service import Decision, RateLimiter, strictest
from tests.conftest import RUN_ID

pytestmark = pytest.mark.services


@pytest.fixture
async def redis(redis_url: str | None) -> AsyncIterator[Redis]:
    if redis_url is None:
        pytest.skip("needs the real Redis (reachable whenever STUDIO_REQUIRE_SERVICES=1)")
    client = Redis.from_url(redis_url, max_connections=300)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    # Under the run's prefix, so the session fixture removes the keys afterwards.
    return f"studio-test-{RUN_ID}:rl-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def limiter(redis: Redis, prefix: str) -> RateLimiter:
    return RateLimiter(redis, prefix)


async def test_exact_count_under_200_concurrent_hits(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(
        *(limiter.hit("burst", "k", limit=50, window=60) for _ in range(200))
    )
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 50
    assert sorted(d.remaining for d in allowed) == list(range(50))
    assert all(d.remaining == 0 for d in decisions if not d.allowed)
    # Refused hits are not counted: the bucket holds exactly the limit.
    assert not (await limiter.hit("burst", "k", limit=50, window=60)).allowed
    assert (await limiter.hit("burst", "k", limit=51, window=60)).allowed


async def test_headers_count_down(limiter: RateLimiter) -> None:
    seen: list[dict[str, str]] = []
    for _ in range(4):
        decision = await limiter.hit("countdown", "k", limit=3, window=30)
        seen.append(decision.headers())
    assert [h["RateLimit-Remaining"] for h in seen] == ["2", "1", "0", "0"]
    assert {h["RateLimit-Limit"] for h in seen} == {"3"}
    for h in seen:
        assert 1 <= int(h["RateLimit-Reset"]) <= 30
    assert ["Retry-After" in h for h in seen] == [False, False, False, True]
    assert 1 <= int(seen[3]["Retry-After"]) <= 30


async def test_reset_clears_the_bucket(limiter: RateLimiter) -> None:
    for _ in range(2):
        assert (await limiter.hit("reset", "k", limit=2, window=60)).allowed
    assert not (await limiter.hit("reset", "k", limit=2, window=60)).allowed
    await limiter.reset("reset", "k")
    decision = await limiter.hit("reset", "k", limit=2, window=60)
    assert decision.allowed and decision.remaining == 1


async def test_window_reopens_after_it_passes(limiter: RateLimiter) -> None:
    assert (await limiter.hit("window", "k", limit=2, window=1)).allowed
    assert (await limiter.hit("window", "k", limit=2, window=1)).allowed
    refused = await limiter.hit("window", "k", limit=2, window=1)
    assert not refused.allowed
    assert refused.reset_seconds == 1
    assert refused.headers()["Retry-After"] == "1"
    await asyncio.sleep(1.1)
    reopened = await limiter.hit("window", "k", limit=2, window=1)
    assert reopened.allowed and reopened.remaining == 1


async def test_window_slides(limiter: RateLimiter) -> None:
    # Limit 2 per 2 s: hits at 0 s and 1 s; at 2.1 s only the first one has left the window.
    start = time.monotonic()
    assert (await limiter.hit("slide", "k", limit=2, window=2)).allowed
    await asyncio.sleep(1.0)
    assert (await limiter.hit("slide", "k", limit=2, window=2)).allowed
    assert not (await limiter.hit("slide", "k", limit=2, window=2)).allowed
    await asyncio.sleep(max(0.0, 2.1 - (time.monotonic() - start)))
    assert (await limiter.hit("slide", "k", limit=2, window=2)).allowed
    assert not (await limiter.hit("slide", "k", limit=2, window=2)).allowed


async def test_buckets_and_keys_are_independent(limiter: RateLimiter) -> None:
    assert (await limiter.hit("a", "one", limit=1, window=60)).allowed
    assert not (await limiter.hit("a", "one", limit=1, window=60)).allowed
    assert (await limiter.hit("a", "two", limit=1, window=60)).allowed
    assert (await limiter.hit("b", "one", limit=1, window=60)).allowed


async def test_prefixes_are_independent(redis: Redis, prefix: str) -> None:
    first, second = RateLimiter(redis, prefix + "x:"), RateLimiter(redis, prefix + "y:")
    assert (await first.hit("p", "k", limit=1, window=60)).allowed
    assert (await second.hit("p", "k", limit=1, window=60)).allowed


async def test_keys_expire_with_the_window(limiter: RateLimiter, redis: Redis, prefix: str) -> None:
    await limiter.hit("ttl", "k", limit=5, window=7)
    keys = [k async for k in redis.scan_iter(match=f"{prefix}rl:*")]
    assert len(keys) == 1
    ttl = await redis.pttl(keys[0])
    assert 0 < ttl <= 7000


async def test_two_limiters_share_the_count(redis: Redis, prefix: str) -> None:
    # Two workers are two limiter objects on one Redis: the count is shared and exact.
    workers = [RateLimiter(redis, prefix), RateLimiter(redis, prefix)]
    decisions = await asyncio.gather(
        *(workers[i % 2].hit("shared", "k", limit=7, window=60) for i in range(40))
    )
    assert sum(d.allowed for d in decisions) == 7


async def test_fails_closed_when_redis_is_unreachable() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        limiter = RateLimiter(dead, "studio-test-dead:")
        with pytest.raises(DependencyUnavailable) as caught:
            await limiter.hit("login-ip", "127.0.0.1", limit=10, window=60)
        assert caught.value.status_code == 503
        assert caught.value.code == "DEPENDENCY_UNAVAILABLE"
    finally:
        await dead.aclose()


def test_strictest_prefers_a_refusal() -> None:
    ok = Decision(allowed=True, limit=10, remaining=3, reset_seconds=50)
    tight = Decision(allowed=True, limit=10, remaining=1, reset_seconds=20)
    refused = Decision(allowed=False, limit=5, remaining=0, reset_seconds=7)
    assert strictest([ok, tight]) is tight
    assert strictest([ok, refused, tight]) is refused
    assert refused.headers()["Retry-After"] == "7"
    zero = Decision(allowed=False, limit=5, remaining=0, reset_seconds=0)
    assert zero.headers()["Retry-After"] == "1"  # never tell a client to retry at once
