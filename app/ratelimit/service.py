"""Sliding-window rate limiter: one Lua script, exact across workers and instances."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from redis.exceptions import RedisError

from app.core.errors import DependencyUnavailable
from app.core.redis import RedisClient

# KEYS[1] the window's sorted set; ARGV: window (ms), limit, member suffix.
# Redis's own clock, so every instance agrees; prune, count, admit, and report in one step.
SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local reset = window
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, limit - count, reset, now .. '-' .. ARGV[3]}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the oldest counted request leaves the window
    member: str = ""  # this hit's entry, so a refusal elsewhere can give the slot back

    def headers(self) -> dict[str, str]:
        """IETF RateLimit header fields (and Retry-After when refused)."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class RateLimiter:
    """Counts hits per key in Redis; a Redis failure refuses the request (fail closed)."""

    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(SLIDING_WINDOW)

    async def hit(self, bucket: str, key: str, *, limit: int, window: int) -> Decision:
        """Count one request against `bucket:key`; `window` in seconds."""
        redis_key = f"{self._prefix}rl:{{{bucket}:{key}}}"
        try:
            allowed, remaining, reset_ms, member = await self._script(
                keys=[redis_key], args=[window * 1000, limit, secrets.token_hex(6)]
            )
        except RedisError as exc:
            raise DependencyUnavailable("Rate limiter is unavailable") from exc
        return Decision(
            allowed=bool(allowed),
            limit=limit,
            remaining=max(0, int(remaining)),
            reset_seconds=max(0, math.ceil(int(reset_ms) / 1000)),
            member=member.decode() if isinstance(member, bytes) else str(member),
        )

    async def release(self, bucket: str, key: str, member: str) -> None:
        """Give back a slot taken by a request that another limit refused."""
        try:
            await self._redis.zrem(f"{self._prefix}rl:{{{bucket}:{key}}}", member)
        except RedisError as exc:
            raise DependencyUnavailable("Rate limiter is unavailable") from exc

    async def reset(self, bucket: str, key: str) -> None:
        await self._redis.delete(f"{self._prefix}rl:{{{bucket}:{key}}}")


def strictest(decisions: list[Decision]) -> Decision:
    """The decision to report when several limits apply: a refusal, else the least remaining."""
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.reset_seconds)
    return min(decisions, key=lambda d: (d.remaining, -d.reset_seconds))
