"""Cookie renewal with the refresh token the session keeps server-side: whose token it must be,
and what an expired one answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.auth import cookies
from app.core.config import Settings
from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    assert_error,
    assert_ok,
    claims_of,
    register,
    running,
    sign,
)

pytestmark = pytest.mark.services

APP_ORIGIN = "http://app.example.com"
SESSION = "studio_session"
GRANT = 30  # seconds of access grant; renewal is due after it


@pytest.fixture
async def studio(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    settings = make_settings(cors_allow_origins=[APP_ORIGIN], jwt_access_token_expire_seconds=GRANT)
    async with running(settings) as pair:
        yield pair


async def cookie_session(client: httpx.AsyncClient, email: str) -> tuple[str, str]:
    """Log in in cookie mode on a fresh cookie jar; (user id, session id) of the new session."""
    client.cookies.clear()
    response = await client.post(
        f"{AUTH}/login",
        json={"email": email, "password": PASSWORD, "mode": "cookie"},
        headers={"Origin": APP_ORIGIN},
    )
    assert_ok(response)
    uid, sid, _ = client.cookies[SESSION].split(".")
    return uid, sid


def key_of(state: dict[str, Any], uid: str, sid: str) -> str:
    return str(state["session_store"].session_key(uid, sid))


def renewal_due(monkeypatch: pytest.MonkeyPatch) -> None:
    """Move the cookie grant's clock past the access grant: the next request renews."""
    monkeypatch.setattr(cookies, "clock", lambda: time.time() + GRANT + 1)


async def test_renewal_refuses_a_stored_token_of_another_session_of_the_same_user(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state = studio
    redis = state["redis"]
    user = await register(client)
    other_uid, other_sid = await cookie_session(client, user["email"])
    other = await redis.hgetall(key_of(state, other_uid, other_sid))
    uid, sid = await cookie_session(client, user["email"])
    assert sid != other_sid
    key = key_of(state, uid, sid)
    assert_ok(await client.get(f"{AUTH}/me"))

    # The session's store now holds a valid refresh token of the user's other session.
    await redis.hset(key, "rtok", other[b"rtok"])
    renewal_due(monkeypatch)
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_REVOKED")
    # Neither session was rotated with the other's token.
    assert (await redis.hget(key, "rtok")) == other[b"rtok"]
    after = await redis.hgetall(key_of(state, other_uid, other_sid))
    assert after[b"rjti"] == other[b"rjti"] and after[b"rtok"] == other[b"rtok"]


async def test_renewal_refuses_a_stored_token_of_another_user(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state = studio
    redis = state["redis"]
    stranger = await register(client)
    stranger_uid, stranger_sid = await cookie_session(client, stranger["email"])
    stranger_token = (await redis.hget(key_of(state, stranger_uid, stranger_sid), "rtok")).decode()
    user = await register(client)
    uid, sid = await cookie_session(client, user["email"])
    key = key_of(state, uid, sid)
    assert uid != stranger_uid

    # Signed by Studio and naming this very session id, but issued to another user.
    now = int(time.time())
    forged = sign({**claims_of(stranger_token), "sid": sid, "iat": now, "nbf": now})
    await redis.hset(key, "rtok", forged)
    renewal_due(monkeypatch)
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_REVOKED")
    assert (await redis.hget(key, "rtok")).decode() == forged


async def _expired_stored_token(
    client: httpx.AsyncClient, state: dict[str, Any], *, cut_short: bool
) -> str:
    """A cookie session whose stored refresh token is expired: cut short by the session's end
    (`sxp` == `exp`) or run out before it. Returns the session's key."""
    redis = state["redis"]
    user = await register(client)
    uid, sid = await cookie_session(client, user["email"])
    key = key_of(state, uid, sid)
    claims = claims_of((await redis.hget(key, "rtok")).decode())
    now = int(time.time())
    ends = now - 10 if cut_short else now + 3600
    expired = sign({**claims, "iat": now - 70, "nbf": now - 70, "exp": now - 10, "sxp": ends})
    await redis.hset(key, "rtok", expired)
    return key


async def test_renewal_with_a_token_cut_short_by_the_session_end_is_session_expired(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state = studio
    key = await _expired_stored_token(client, state, cut_short=True)
    assert_ok(await client.get(f"{AUTH}/me"))  # the grant still runs: no renewal yet
    renewal_due(monkeypatch)
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_EXPIRED")
    assert await state["redis"].exists(key)


async def test_renewal_with_a_token_that_ran_out_before_the_session_end_is_session_revoked(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state = studio
    await _expired_stored_token(client, state, cut_short=False)
    assert_ok(await client.get(f"{AUTH}/me"))
    renewal_due(monkeypatch)
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_REVOKED")
