"""The session cache: serves checks without a Redis read, forgets a session on every instance
the moment it changes, and serves nothing while its pub/sub subscriber is not provably current."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.auth.session_cache import SessionCache
from app.core.config import Settings
from tests.auth.helpers import AUTH, account, assert_error, assert_ok, bearer, claims_of, running
from tests.harness.servers import RedisServer
from tests.support import wait_until

pytestmark = pytest.mark.services


def _cache(state: dict[str, Any]) -> SessionCache:
    cache = state["session_store"].cache
    assert isinstance(cache, SessionCache)
    return cache


def _session_key(state: dict[str, Any], token: str) -> str:
    claims = claims_of(token)
    return str(state["session_store"].session_key(claims["sub"], claims["sid"]))


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{AUTH}/me", headers=bearer(token))


async def test_a_cached_check_reads_no_redis(
    client: httpx.AsyncClient, state: dict[str, Any], redis_url: str
) -> None:
    cache = _cache(state)
    await wait_until(lambda: cache.live, what="subscriber live")
    _, pair = await account(client)
    token = pair["access_token"]
    assert_ok(await _me(client, token))  # fills the cache
    metrics = (await client.get("/metrics")).text
    assert "studio_session_cache_live 1.0" in metrics
    assert "studio_session_cache_entries 1.0" in metrics

    # Out of band (no publish): only a cache can still know the session.
    redis = Redis.from_url(redis_url)
    try:
        await redis.delete(_session_key(state, token))
        assert_ok(await _me(client, token))
        # A published invalidation, as any instance's logout sends it, ends that at once.
        generation = cache.generation
        await redis.publish(cache.channel, _session_key(state, token))
    finally:
        await redis.aclose()
    await wait_until(lambda: cache.generation > generation, what="invalidation received")
    assert_error(await _me(client, token), 401, "SESSION_REVOKED")


async def test_logout_on_one_instance_is_honoured_by_another(settings: Settings) -> None:
    async with running(settings) as (one, state_one), running(settings) as (two, state_two):
        cache_two = _cache(state_two)
        await wait_until(lambda: _cache(state_one).live and cache_two.live, what="both live")
        _, pair = await account(one)
        token = pair["access_token"]
        assert_ok(await _me(two, token))
        assert_ok(await _me(two, token))  # served from instance two's cache

        generation = cache_two.generation
        assert_ok(await one.post(f"{AUTH}/logout", headers=bearer(token)))
        await wait_until(lambda: cache_two.generation > generation, what="two told")
        assert_error(await _me(two, token), 401, "SESSION_REVOKED")
        assert_error(await _me(one, token), 401, "SESSION_REVOKED")


async def test_role_change_reaches_cached_sessions(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    cache = _cache(state)
    await wait_until(lambda: cache.live, what="subscriber live")
    user, pair = await account(client)
    token = pair["access_token"]
    assert assert_ok(await _me(client, token))["roles"] == ["viewer"]

    await state["session_store"].update_grants(user["id"], ["analyst"], ["documents:read"])
    me = assert_ok(await _me(client, token))
    assert me["roles"] == ["analyst"]


async def test_a_fill_that_raced_an_invalidation_is_not_kept() -> None:
    cache = SessionCache(redis=None, channel="unused", ttl=5)
    cache._live_until = float("inf")  # as if the subscriber were current
    fields = ("uid",)
    before = cache.generation
    cache.invalidate("studio:{u:1}:s:a")  # arrives while the read is in flight
    cache.put("studio:{u:1}:s:a", fields, [b"1"], before)
    assert cache.get("studio:{u:1}:s:a", fields) is None

    cache.put("studio:{u:1}:s:a", fields, [b"1"], cache.generation)
    assert cache.get("studio:{u:1}:s:a", fields) == [b"1"]
    assert cache.get("studio:{u:1}:s:a", ("uid", "mode")) is None  # other fields: a miss
    cache._live_until = 0.0
    assert cache.get("studio:{u:1}:s:a", fields) is None  # never served while not live


async def test_a_busy_session_is_reread_in_the_background_before_it_expires() -> None:
    reads: list[str] = []
    release = asyncio.Event()

    async def loader(key: str, fields: tuple[str, ...]) -> list[bytes | None]:
        reads.append(key)
        await release.wait()
        return [b"fresh"]

    cache = SessionCache(redis=None, channel="unused", ttl=5)
    cache.loader = loader
    cache._live_until = float("inf")
    key, fields = "studio:{u:1}:s:a", ("uid",)
    cache.put(key, fields, [b"old"], cache.generation)
    assert cache.get(key, fields) == [b"old"] and reads == []  # young: no re-read

    expires, _, cached_fields, values = cache._entries[key]
    cache._entries[key] = (expires, 0.0, cached_fields, values)  # past half its life
    assert [cache.get(key, fields) for _ in range(3)] == [[b"old"]] * 3  # still served
    await asyncio.sleep(0)
    assert reads == [key]  # one background read for the burst, not one per request
    release.set()
    await wait_until(lambda: cache.get(key, fields) == [b"fresh"], what="refreshed")

    # A re-read that raced an invalidation is dropped like any other fill.
    release.clear()
    expires, _, cached_fields, values = cache._entries[key]
    cache._entries[key] = (expires, 0.0, cached_fields, values)
    cache.get(key, fields)
    await asyncio.sleep(0)
    cache.invalidate(key)
    release.set()
    await wait_until(lambda: not cache._refreshing, what="re-read done")
    assert cache.get(key, fields) is None


@pytest.fixture
def own_redis() -> Any:
    with RedisServer() as server:
        yield server


async def test_lost_subscriber_switches_the_cache_off_until_resubscribed(
    make_settings: Callable[..., Settings], own_redis: RedisServer
) -> None:
    async with running(make_settings(redis_url=own_redis.url)) as (client, state):
        cache = _cache(state)
        await wait_until(lambda: cache.live, what="subscriber live")
        _, pair = await account(client)
        token = pair["access_token"]
        assert_ok(await _me(client, token))

        generation = cache.generation
        admin = Redis.from_url(own_redis.url)
        try:
            await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await wait_until(lambda: cache.generation > generation, what="subscriber lost")
            assert cache.get(_session_key(state, token), state["session_store"].FIELDS) is None
            # Whatever was published while it was away is lost: the cache starts empty, and
            # a change made meanwhile is read from Redis.
            await admin.delete(_session_key(state, token))
        finally:
            await admin.aclose()
        assert_error(await _me(client, token), 401, "SESSION_REVOKED")
        await wait_until(lambda: cache.live, what="subscriber back")

        _, again = await account(client)
        assert_ok(await _me(client, again["access_token"]))
        assert cache.get(_session_key(state, again["access_token"]), state["session_store"].FIELDS)


async def test_no_cache_when_switched_off(make_settings: Callable[..., Settings]) -> None:
    async with running(make_settings(session_cache_seconds=0)) as (client, state):
        cache = state["session_store"].cache
        assert not cache.serves
        await wait_until(lambda: cache.live, what="the invalidation subscriber")
        _, pair = await account(client)
        assert_ok(await _me(client, pair["access_token"]))
        assert_ok(await _me(client, pair["access_token"]))
        assert len(cache) == 0 and cache.hits == 0  # every check read Redis
