"""Cookie-mode CSRF beyond tests/auth/test_cookie_mode.py: the header must equal the CSRF
cookie as well as the session's token, and Studio's own origin comes from forwarded headers
only when the peer is a trusted proxy."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from app.core.config import Settings
from tests.auth.helpers import AUTH, PASSWORD, assert_error, assert_ok, register, running

APP_ORIGIN = "http://app.example.com"
CSRF = "studio_csrf"
URL = f"{AUTH}/sessions/no-such-session"  # DELETE: 404 once authenticated, 403 on a CSRF failure


async def _cookie_session(client: httpx.AsyncClient) -> str:
    """Log a fresh account in with a cookie session; its CSRF token."""
    user = await register(client)
    result = assert_ok(
        await client.post(
            f"{AUTH}/login",
            json={"email": user["email"], "password": PASSWORD, "mode": "cookie"},
            headers={"Origin": APP_ORIGIN},
        )
    )
    token = client.cookies[CSRF]
    assert result["csrf_token"] == token
    return token


@pytest.mark.parametrize("cookie", [None, "another-value"])
async def test_the_header_must_also_equal_the_csrf_cookie(
    make_settings: Callable[..., Settings], cookie: str | None
) -> None:
    async with running(make_settings(cors_allow_origins=[APP_ORIGIN])) as (client, _):
        token = await _cookie_session(client)
        headers = {"X-CSRF-Token": token, "Origin": APP_ORIGIN}
        assert_error(await client.delete(URL, headers=headers), 404, "NOT_FOUND")
        if cookie is None:
            client.cookies.delete(CSRF)
        else:
            client.cookies.set(CSRF, cookie)
        body = assert_error(await client.delete(URL, headers=headers), 403, "CSRF_FAILED")
        assert body["error"]["details"] == {"reason": "csrf_token"}


@pytest.mark.parametrize(("proxies", "status"), [(["10.0.0.0/8"], 403), (["127.0.0.1/32"], 404)])
async def test_own_origin_believes_forwarded_host_only_from_a_trusted_peer(
    make_settings: Callable[..., Settings], proxies: list[str], status: int
) -> None:
    # The test client's peer is 127.0.0.1: a proxy only in the second case.
    settings = make_settings(cors_allow_origins=[APP_ORIGIN], trusted_proxies=proxies)
    async with running(settings) as (client, _):
        token = await _cookie_session(client)
        headers = {
            "X-CSRF-Token": token,
            "Origin": "https://evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
        }
        response = await client.delete(URL, headers=headers)
        if status == 403:
            body = assert_error(response, 403, "CSRF_FAILED")
            assert body["error"]["details"] == {"reason": "origin_not_allowed"}
        else:
            assert_error(response, 404, "NOT_FOUND")
