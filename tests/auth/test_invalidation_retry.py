"""A lost invalidation: the publish after a session change is retried, and the change (already
made in Redis) is answered as a success even when every attempt fails."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.auth import session_cache
from app.auth.session_cache import SessionCache
from app.core.config import Settings
from tests.auth.helpers import AUTH, account, assert_error, assert_ok, bearer, claims_of, running
from tests.support import wait_until

pytestmark = pytest.mark.services


class FlakyPublisher:
    """The cache's Redis client, whose PUBLISH fails `failures` times first."""

    def __init__(self, redis: Any, failures: int) -> None:
        self._redis = redis
        self.failures = failures
        self.attempts = 0

    async def publish(self, channel: str, message: str) -> int:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise RedisConnectionError("connection reset by peer")
        return int(await self._redis.publish(channel, message))


class Recorder:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **fields: Any) -> None:
        self.errors.append((event, fields))

    def __getattr__(self, _name: str) -> Any:
        return lambda *args, **kwargs: None


def _cache(state: dict[str, Any]) -> SessionCache:
    cache = state["session_store"].cache
    assert isinstance(cache, SessionCache)
    return cache


async def test_a_failed_publish_is_retried_and_reaches_other_instances(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(settings) as (one, state_one), running(settings) as (two, state_two):
        cache_one, cache_two = _cache(state_one), _cache(state_two)
        await wait_until(lambda: cache_one.live and cache_two.live, what="both live")
        _, pair = await account(one)
        token = pair["access_token"]
        assert_ok(await two.get(f"{AUTH}/me", headers=bearer(token)))  # cached on two

        flaky = FlakyPublisher(cache_one._redis, failures=2)
        monkeypatch.setattr(cache_one, "_redis", flaky)
        generation = cache_two.generation
        assert_ok(await one.post(f"{AUTH}/logout", headers=bearer(token)))
        assert flaky.attempts == 3
        await wait_until(lambda: cache_two.generation > generation, what="two told")
        assert_error(await two.get(f"{AUTH}/me", headers=bearer(token)), 401, "SESSION_REVOKED")


async def test_a_lost_publish_still_answers_success_once_the_session_is_gone(
    client: Any, state: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _cache(state)
    await wait_until(lambda: cache.live, what="subscriber live")
    _, pair = await account(client)
    token = pair["access_token"]
    claims = claims_of(token)
    flaky = FlakyPublisher(cache._redis, failures=1000)
    monkeypatch.setattr(cache, "_redis", flaky)
    recorder = Recorder()
    monkeypatch.setattr(session_cache, "log", recorder)

    assert_ok(await client.post(f"{AUTH}/logout", headers=bearer(token)))
    assert flaky.attempts >= 2  # retried before giving up
    key = state["session_store"].session_key(claims["sub"], claims["sid"])
    assert not await state["redis"].exists(key)
    assert [event for event, _ in recorder.errors] == ["session invalidation not published"]
    assert_error(await client.get(f"{AUTH}/me", headers=bearer(token)), 401, "SESSION_REVOKED")
