"""The session cache's listener hook: every key the channel carries, FLUSH on a subscription."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from app.auth.session_cache import FLUSH, SessionCache
from app.core.config import Settings
from tests.support import wait_until


async def test_listeners_hear_published_keys_and_a_flush_on_subscribe(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = make_settings()
    redis: Any = Redis.from_url(redis_url)
    cache = SessionCache(redis, f"{settings.redis_key_prefix}inv", 5.0)
    heard: list[str] = []
    cache.add_listener(heard.append)

    def broken(key: str) -> None:
        raise RuntimeError(key)

    cache.add_listener(broken)  # a broken listener does not stop the others
    cache.start()
    try:
        await wait_until(lambda: cache.live, 10, "subscriber live")
        assert heard == [FLUSH.decode()]  # a (re)subscription may have missed messages
        await cache.publish("studio:{u:1}:s:abc")  # told here, then again from the channel
        await wait_until(lambda: heard.count("studio:{u:1}:s:abc") == 2, 10, "key heard")
        await redis.publish(cache.channel, "studio:{u:2}:s:def")  # another instance's
        await wait_until(lambda: "studio:{u:2}:s:def" in heard, 10, "remote key heard")
    finally:
        await cache.stop()
        await redis.aclose()
