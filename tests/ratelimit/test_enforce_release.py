"""`enforce` is all or nothing: a bucket that counted a hit gives it back when a later bucket
refuses the same request (against the real Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from starlette.requests import Request

from app.ratelimit.dependencies import enforce
from app.ratelimit.errors import RateLimited
from app.ratelimit.service import RateLimiter
from tests.conftest import RUN_ID

pytestmark = pytest.mark.services


@pytest.fixture
async def redis(redis_url: str | None) -> AsyncIterator[Redis]:
    if redis_url is None:
        pytest.skip("needs the real Redis (reachable whenever STUDIO_REQUIRE_SERVICES=1)")
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def limiter(redis: Redis) -> RateLimiter:
    # Under the run's prefix, so the session fixture removes the keys afterwards.
    return RateLimiter(redis, f"studio-test-{RUN_ID}:rl-{uuid.uuid4().hex[:8]}:")


def _request(limiter: RateLimiter) -> Request:
    return Request({"type": "http", "headers": [], "state": {"rate_limiter": limiter}})


async def test_refused_second_bucket_gives_back_the_first_buckets_slot(
    limiter: RateLimiter,
) -> None:
    # The second bucket is already spent, so every request through both is refused.
    assert (await limiter.hit("second", "k", limit=1, window=60)).allowed
    checks = [("first", "k", 3, 60), ("second", "k", 1, 60)]
    for _ in range(5):
        with pytest.raises(RateLimited):
            await enforce(_request(limiter), checks)
    # None of the five refused requests is still counted in the first bucket: it has all
    # three of its slots left.
    first = await limiter.hit("first", "k", limit=3, window=60)
    assert first.allowed
    assert first.remaining == 2


async def test_every_earlier_bucket_gives_back_its_slot(limiter: RateLimiter) -> None:
    assert (await limiter.hit("third", "k", limit=1, window=60)).allowed
    checks = [("one", "k", 2, 60), ("two", "k", 2, 60), ("third", "k", 1, 60)]
    for _ in range(3):
        with pytest.raises(RateLimited):
            await enforce(_request(limiter), checks)
    for bucket in ("one", "two"):
        decision = await limiter.hit(bucket, "k", limit=2, window=60)
        assert decision.allowed, bucket
        assert decision.remaining == 1, bucket


async def test_allowed_request_counts_in_every_bucket(limiter: RateLimiter) -> None:
    checks = [("a", "k", 3, 60), ("b", "k", 5, 60)]
    decision = await enforce(_request(limiter), checks)
    assert decision.allowed
    assert decision.remaining == 2  # the strictest: bucket a, one of three used
    assert (await limiter.hit("a", "k", limit=3, window=60)).remaining == 1
    assert (await limiter.hit("b", "k", limit=5, window=60)).remaining == 3
