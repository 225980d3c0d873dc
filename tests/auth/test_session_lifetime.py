"""SESSION_MAX_LIFETIME_SECONDS: a session ends that long after its login however often it is
refreshed, and no token, session key or cookie issued for it outlives that moment."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.auth import cookies, sessions
from app.core.config import Settings
from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    assert_error,
    assert_ok,
    bearer,
    claims_of,
    login,
    register,
    running,
    sign,
)

pytestmark = pytest.mark.services

LIFETIME = 60  # the smallest the setting accepts
APP_ORIGIN = "http://app.example.com"


@pytest.fixture
async def studio(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    settings = make_settings(session_max_lifetime_seconds=LIFETIME, cors_allow_origins=[APP_ORIGIN])
    async with running(settings) as pair:
        yield pair


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the session clock (and the cookie grant's) forward."""
    monkeypatch.setattr(sessions, "clock", lambda: time.time() + seconds)
    monkeypatch.setattr(cookies, "clock", lambda: time.time() + seconds)


async def _session_pttl(state: dict[str, Any], token: str) -> int:
    claims = claims_of(token)
    key = state["session_store"].session_key(claims["sub"], claims["sid"])
    return int(await state["redis"].pttl(key))


async def test_login_issues_nothing_that_outlives_the_lifetime(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, state = studio
    user = await register(client)
    pair = await login(client, user["email"])
    assert pair["expires_in"] <= LIFETIME and pair["refresh_expires_in"] <= LIFETIME
    for token in (pair["access_token"], pair["refresh_token"]):
        claims = claims_of(token)
        assert claims["exp"] - claims["iat"] <= LIFETIME
    assert 0 < await _session_pttl(state, pair["refresh_token"]) <= LIFETIME * 1000


async def test_refresh_never_extends_the_session_past_its_login_plus_lifetime(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state = studio
    user = await register(client)
    pair = await login(client, user["email"])
    deadline = claims_of(pair["refresh_token"])["exp"]

    _later(monkeypatch, LIFETIME / 2)
    fresh = assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"])))
    assert claims_of(fresh["refresh_token"])["exp"] <= deadline
    assert claims_of(fresh["access_token"])["exp"] <= deadline
    # Half the lifetime is gone on the session clock: the key expires no later than the rest.
    assert 0 < await _session_pttl(state, fresh["refresh_token"]) <= LIFETIME / 2 * 1000

    _later(monkeypatch, LIFETIME + 1)
    expired = await client.post(f"{AUTH}/refresh", headers=bearer(fresh["refresh_token"]))
    assert_error(expired, 401, "SESSION_EXPIRED")
    assert await _session_pttl(state, fresh["refresh_token"]) == -2  # the session is gone
    again = await client.post(f"{AUTH}/refresh", headers=bearer(fresh["refresh_token"]))
    assert again.status_code == 401


async def test_a_cookie_session_is_not_renewed_past_its_lifetime(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = studio
    user = await register(client)
    response = await client.post(
        f"{AUTH}/login",
        json={"email": user["email"], "password": PASSWORD, "mode": "cookie"},
        headers={"Origin": APP_ORIGIN},
    )
    result = assert_ok(response)
    assert result["expires_in"] <= LIFETIME
    for header in response.headers.get_list("set-cookie"):
        max_age = next(p for p in header.split("; ") if p.startswith("Max-Age="))
        assert 0 < int(max_age.split("=")[1]) <= LIFETIME
    assert_ok(await client.get(f"{AUTH}/me"))

    _later(monkeypatch, LIFETIME + 1)  # the access grant ran out too: renewal is due
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_EXPIRED")
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_REVOKED")  # and it is gone


async def test_the_csrf_cookie_set_again_ends_with_its_session(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = studio
    user = await register(client)
    assert_ok(
        await client.post(
            f"{AUTH}/login",
            json={"email": user["email"], "password": PASSWORD, "mode": "cookie"},
            headers={"Origin": APP_ORIGIN},
        )
    )
    monkeypatch.setattr(sessions, "clock", lambda: time.time() + LIFETIME / 2)
    response = await client.get(f"{AUTH}/csrf")
    assert_ok(response)
    (header,) = response.headers.get_list("set-cookie")
    max_age = next(p for p in header.split("; ") if p.startswith("Max-Age="))
    assert 0 < int(max_age.split("=")[1]) <= LIFETIME / 2


async def test_a_refresh_token_cut_short_by_the_lifetime_reads_session_expired(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    user = await register(client)
    claims = claims_of((await login(client, user["email"]))["refresh_token"])
    now = int(time.time())
    then = {"iat": now - 70, "nbf": now - 70}
    # Signed by Studio, already expired: one cut short by the lifetime (its exp is the session's
    # end), one that ran out before it.
    cut = sign({**claims, **then, "exp": now - 10, "sxp": now - 10})
    full = sign({**claims, **then, "exp": now - 10, "sxp": now + 100})
    assert_error(await client.post(f"{AUTH}/refresh", headers=bearer(cut)), 401, "SESSION_EXPIRED")
    assert_error(await client.post(f"{AUTH}/refresh", headers=bearer(full)), 401, "TOKEN_EXPIRED")
