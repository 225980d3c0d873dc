"""The per-user cap on open sockets, shared by every instance through Redis.

Each open socket holds a lease in a sorted set per user (member: the socket's id, score: when
the lease ends). The holder renews its lease while the socket lives, so the sockets of an
instance that died stop counting once their leases run out. Taking a slot is one Lua script:
drop expired leases, count, add. Redis down at the upgrade refuses the socket (fail closed).
"""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from app.core.errors import DependencyUnavailable
from app.core.redis import RedisClient
from app.ratelimit.errors import RateLimited

RETRY_AFTER = 5  # seconds

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(ARGV[2]) * 1000))
return 1
"""


class SocketQuota:
    """At most `limit` open sockets per user, across instances."""

    def __init__(self, redis: RedisClient, prefix: str, limit: int, lease: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self.limit = limit
        self.lease = lease  # seconds a lease lasts unless renewed
        self._take = redis.register_script(_TAKE)

    def _key(self, user_id: str) -> str:
        return f"{self._prefix}{{u:{user_id}}}:websockets"

    async def take(self, user_id: str, socket_id: str) -> None:
        """Hold a slot for `socket_id`; `RateLimited` at the cap, `DependencyUnavailable` when
        Redis does not answer."""
        now = time.time()
        try:
            taken = await self._take(
                keys=[self._key(user_id)],
                args=[f"{now:.3f}", f"{now + self.lease:.3f}", self.limit, socket_id],
            )
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("Socket limits are unavailable") from exc
        if not taken:
            raise RateLimited(
                "Too many open sockets",
                details={"max_sockets": self.limit},
                headers={"Retry-After": str(RETRY_AFTER)},
            )

    async def renew(self, user_id: str, socket_id: str) -> None:
        """Extend a held lease (a failure is left to the next renewal)."""
        until = time.time() + self.lease
        key = self._key(user_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {socket_id: until}, xx=True)
                pipe.pexpireat(key, int(until * 1000))
                await pipe.execute()
        except (RedisError, OSError):
            return

    async def release(self, user_id: str, socket_id: str) -> None:
        """Give the slot back (a failure leaves the lease to run out)."""
        try:
            await self._redis.zrem(self._key(user_id), socket_id)
        except (RedisError, OSError):
            return
