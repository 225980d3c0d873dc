"""Cookie session mode (BFF): cookie attributes, CSRF and Origin checks, transparent refresh,
logout, Bearer precedence, and a proxied route authenticated by the cookie."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth import cookies
from app.core.config import Settings
from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    assert_error,
    assert_ok,
    bearer,
    login,
    register,
    running,
)
from tests.fakes.server import FakeService, make_service
from tests.support import live_server

APP_ORIGIN = "http://app.example.com"
SESSION, CSRF = "studio_session", "studio_csrf"


@pytest.fixture
async def studio(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    settings = make_settings(cors_allow_origins=[APP_ORIGIN], jwt_access_token_expire_seconds=30)
    async with running(settings) as pair:
        yield pair


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0]] = header
    return found


def attributes(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


async def cookie_login(
    client: httpx.AsyncClient, email: str, origin: str | None = APP_ORIGIN
) -> httpx.Response:
    headers = {"Origin": origin} if origin else {}
    return await client.post(
        f"{AUTH}/login",
        json={"email": email, "password": PASSWORD, "mode": "cookie"},
        headers=headers,
    )


async def cookie_account(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh account logged in with a cookie session: (user, login result)."""
    user = await register(client)
    result = assert_ok(await cookie_login(client, user["email"]))
    return user, result


def csrf_headers(client: httpx.AsyncClient, origin: str = APP_ORIGIN) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies[CSRF], "Origin": origin}


def session_key(state: dict[str, Any], client: httpx.AsyncClient) -> str:
    uid, sid, _ = client.cookies[SESSION].split(".")
    return str(state["session_store"].session_key(uid, sid))


async def test_cookie_login_sets_httponly_session_and_readable_csrf_cookie(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    user = await register(client)
    response = await cookie_login(client, user["email"])
    result = assert_ok(response)

    assert result["mode"] == "cookie"
    assert result["user"]["email"] == user["email"]
    assert "access_token" not in result and "refresh_token" not in result
    assert response.headers["cache-control"] == "no-store"
    found = set_cookies(response)
    assert set(found) == {SESSION, CSRF}
    session, csrf = found[SESSION], found[CSRF]
    assert {"httponly", "samesite", "path", "max-age"} <= attributes(session)
    assert "samesite=lax" in session.lower() and "path=/" in session.lower()
    assert "secure" not in attributes(session)  # dev: plain http on localhost works
    assert "httponly" not in attributes(csrf)  # the front-end may read it (double submit)
    assert "samesite=lax" in csrf.lower()
    assert client.cookies[CSRF] == result["csrf_token"]
    # Opaque: names the session and carries a secret; no JWT in the browser.
    value = client.cookies[SESSION]
    assert value.count(".") == 2 and value.split(".")[0] == user["id"]
    assert len(value.split(".")[2]) >= 40


async def test_bearer_login_is_unchanged(studio: tuple[httpx.AsyncClient, dict[str, Any]]) -> None:
    client, _ = studio
    user = await register(client)
    response = await client.post(
        f"{AUTH}/login", json={"email": user["email"], "password": PASSWORD}
    )
    pair = assert_ok(response)
    assert pair["token_type"] == "bearer" and pair["access_token"] and pair["refresh_token"]
    assert "set-cookie" not in response.headers
    assert not client.cookies


async def test_outside_dev_cookies_are_secure_and_host_prefixed(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(environment="staging")
    async with running(settings) as (client, _):
        client.base_url = httpx.URL("https://testserver")
        user = await register(client)
        response = await cookie_login(client, user["email"], origin="https://testserver")
        found = set_cookies(response)
        assert set(found) == {"__Host-studio_session", "__Host-studio_csrf"}
        for header in found.values():
            assert "secure" in attributes(header)
            assert "domain" not in attributes(header)
        assert assert_ok(await client.get(f"{AUTH}/me"))["email"] == user["email"]


async def test_get_needs_no_csrf_and_csrf_endpoint_returns_the_token(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    user, result = await cookie_account(client)
    assert assert_ok(await client.get(f"{AUTH}/me"))["email"] == user["email"]
    response = await client.get(f"{AUTH}/csrf")
    assert assert_ok(response) == {"csrf_token": result["csrf_token"]}
    assert CSRF in set_cookies(response)


async def test_unsafe_methods_need_the_csrf_token(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    await cookie_account(client)
    url = f"{AUTH}/sessions/no-such-session"  # DELETE: 404 once authenticated

    body = assert_error(
        await client.delete(url, headers={"Origin": APP_ORIGIN}), 403, "CSRF_FAILED"
    )
    assert body["error"]["details"] == {"reason": "csrf_token"}
    wrong = {"X-CSRF-Token": "not-the-token", "Origin": APP_ORIGIN}
    assert_error(await client.delete(url, headers=wrong), 403, "CSRF_FAILED")
    assert_error(await client.delete(url, headers=csrf_headers(client)), 404, "NOT_FOUND")


async def test_a_planted_csrf_cookie_does_not_pass(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    await cookie_account(client)
    # Header and cookie agree, but neither is the session's token (cookie tossing).
    client.cookies.set(CSRF, "planted-by-a-sibling-host")
    headers = {"X-CSRF-Token": "planted-by-a-sibling-host", "Origin": APP_ORIGIN}
    response = await client.delete(f"{AUTH}/sessions/x", headers=headers)
    assert_error(response, 403, "CSRF_FAILED")


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (APP_ORIGIN, True),
        ("http://testserver", True),  # Studio's own origin
        ("http://evil.example.com", False),
        ("http://app.example.com.evil.example.com", False),
        ("null", False),
        (None, False),
    ],
)
async def test_unsafe_methods_need_an_allowed_origin(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], origin: str | None, allowed: bool
) -> None:
    client, _ = studio
    await cookie_account(client)
    headers = {"X-CSRF-Token": client.cookies[CSRF]}
    if origin is not None:
        headers["Origin"] = origin
    response = await client.delete(f"{AUTH}/sessions/x", headers=headers)
    if allowed:
        assert_error(response, 404, "NOT_FOUND")
    else:
        assert_error(response, 403, "CSRF_FAILED")


async def test_referer_stands_in_for_a_missing_origin(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    await cookie_account(client)
    token = client.cookies[CSRF]
    good = {"X-CSRF-Token": token, "Referer": f"{APP_ORIGIN}/page?x=1"}
    bad = {"X-CSRF-Token": token, "Referer": "http://evil.example.com/"}
    assert_error(await client.delete(f"{AUTH}/sessions/x", headers=good), 404, "NOT_FOUND")
    assert_error(await client.delete(f"{AUTH}/sessions/x", headers=bad), 403, "CSRF_FAILED")


async def test_cookie_login_from_a_foreign_origin_is_refused(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    user = await register(client)
    response = await cookie_login(client, user["email"], origin="http://evil.example.com")
    assert_error(response, 403, "CSRF_FAILED")
    assert "set-cookie" not in response.headers
    # A script names no origin: allowed.
    assert_ok(await cookie_login(client, user["email"], origin=None))


async def test_expired_access_grant_is_renewed_inside_studio(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state = studio
    user, _ = await cookie_account(client)
    redis = state["redis"]
    key = session_key(state, client)
    before = await redis.hgetall(key)
    assert before[b"mode"] == b"cookie" and before[b"rtok"] and before[b"aexp"]
    cookie_before = client.cookies[SESSION]

    monkeypatch.setattr(cookies, "clock", lambda: time.time() + 31)  # past the 30 s grant
    response = await client.get(f"{AUTH}/me")
    assert assert_ok(response)["email"] == user["email"]
    after = await redis.hgetall(key)
    assert after[b"rjti"] != before[b"rjti"] and after[b"rtok"] != before[b"rtok"]
    assert float(after[b"aexp"]) > time.time() + 31
    # Nothing changes for the browser: same cookie, no Set-Cookie.
    assert "set-cookie" not in response.headers
    assert client.cookies[SESSION] == cookie_before

    # Within the new grant: no further rotation.
    assert_ok(await client.get(f"{AUTH}/me"))
    assert (await redis.hget(key, "rjti")) == after[b"rjti"]

    async with state["sessions"]() as db:
        rows = (
            await db.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "auth.refresh", AuditEvent.target == key.rsplit(":", 1)[1]
                )
            )
        ).scalars()
        assert len(list(rows)) == 1


async def test_parallel_requests_after_expiry_all_pass_and_keep_the_session(
    studio: tuple[httpx.AsyncClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state = studio
    await cookie_account(client)
    monkeypatch.setattr(cookies, "clock", lambda: time.time() + 31)
    responses = await asyncio.gather(*(client.get(f"{AUTH}/me") for _ in range(8)))
    for response in responses:
        assert_ok(response)
    assert await state["redis"].exists(session_key(state, client))
    assert_ok(await client.get(f"{AUTH}/me"))


async def test_the_server_side_refresh_token_is_no_bearer_token(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, state = studio
    await cookie_account(client)
    stored = (await state["redis"].hget(session_key(state, client), "rtok")).decode()
    response = await client.post(f"{AUTH}/refresh", headers=bearer(stored))
    assert_error(response, 401, "TOKEN_INVALID")
    assert_ok(await client.get(f"{AUTH}/me"))  # the session is untouched


async def test_bearer_header_wins_over_the_cookie(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    await cookie_account(client)
    other = await register(client)
    pair = await login(client, other["email"])

    me = assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
    assert me["email"] == other["email"]
    assert_error(await client.get(f"{AUTH}/me", headers=bearer("garbage")), 401, "TOKEN_INVALID")
    # A Bearer caller needs no CSRF token even when cookies ride along.
    response = await client.delete(f"{AUTH}/sessions/x", headers=bearer(pair["access_token"]))
    assert_error(response, 404, "NOT_FOUND")


async def test_a_forged_or_malformed_cookie_is_refused(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    await cookie_account(client)
    uid, sid, secret = client.cookies[SESSION].split(".")
    client.cookies.set(SESSION, f"{uid}.{sid}.{secret[:-2]}xx")
    assert_error(await client.get(f"{AUTH}/me"), 401, "TOKEN_INVALID")
    client.cookies.set(SESSION, "not-a-session")
    assert_error(await client.get(f"{AUTH}/me"), 401, "TOKEN_INVALID")
    client.cookies.set(SESSION, f"{uid}.{'0' * 32}.{secret}")
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_REVOKED")


async def test_a_bearer_session_cannot_be_used_as_a_cookie(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, state = studio
    user = await register(client)
    pair = await login(client, user["email"])
    claims = state["tokens"].verify(pair["access_token"], "access")
    client.cookies.set(SESSION, f"{claims.sub}.{claims.sid}.anything-at-all")
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_REVOKED")


async def test_logout_clears_the_cookies_and_the_session(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, state = studio
    await cookie_account(client)
    key = session_key(state, client)
    stale = dict(client.cookies)

    # Cross-site logout without the token: refused, nothing ends.
    forged = await client.post(f"{AUTH}/logout", headers={"Origin": "http://evil.example.com"})
    assert_error(forged, 403, "CSRF_FAILED")
    assert "set-cookie" not in forged.headers
    assert await state["redis"].exists(key)

    response = await client.post(f"{AUTH}/logout", headers=csrf_headers(client))
    assert_ok(response)
    found = set_cookies(response)
    assert set(found) == {SESSION, CSRF}
    assert all("max-age=0" in h.lower() for h in found.values())
    assert not await state["redis"].exists(key)
    assert SESSION not in client.cookies

    # The old cookie, replayed: the session is gone.
    for name, value in stale.items():
        client.cookies.set(name, value)
    assert_error(await client.get(f"{AUTH}/me"), 401, "SESSION_REVOKED")
    # Logging out again still clears the browser's cookies.
    again = await client.post(f"{AUTH}/logout", headers=csrf_headers(client))
    assert_ok(again)
    assert set(set_cookies(again)) == {SESSION, CSRF}


async def test_bearer_logout_is_unchanged(
    studio: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, _ = studio
    user = await register(client)
    pair = await login(client, user["email"])
    response = await client.post(f"{AUTH}/logout", headers=bearer(pair["access_token"]))
    assert_ok(response)
    assert "set-cookie" not in response.headers
    assert_error(await client.post(f"{AUTH}/logout"), 401, "UNAUTHORIZED")


# The proxy authenticates with the same dependency.

ZEN_USER, ZEN_PASSWORD = "svc", "zen-password"


@pytest.fixture
async def zen() -> AsyncIterator[tuple[FakeService, str]]:
    service = make_service("zen", ZEN_USER, ZEN_PASSWORD)
    async with live_server(service) as url:
        yield service, url


async def test_proxied_routes_accept_the_cookie_and_check_csrf(
    make_settings: Callable[..., Settings],
    zen: tuple[FakeService, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = zen
    monkeypatch.setenv("ZEN_URL", url)
    monkeypatch.setenv("ZEN_SERVICE_USER", ZEN_USER)
    monkeypatch.setenv("ZEN_SERVICE_PASSWORD", ZEN_PASSWORD)
    async with running(make_settings(cors_allow_origins=[APP_ORIGIN])) as (client, _):
        user, _ = await cookie_account(client)

        stream = await client.get("/api/v1/zen/sse", params={"n": 3, "interval": 0.01})
        assert stream.status_code == 200, stream.text
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.text.count("event: tick") == 3

        fake.reset()
        refused = await client.post("/api/v1/zen/chat", json={"q": "hi"})
        assert_error(refused, 403, "CSRF_FAILED")
        assert not fake.calls("/chat")  # refused before anything left Studio

        echoed = assert_ok(
            await client.post("/api/v1/zen/chat", json={"q": "hi"}, headers=csrf_headers(client))
        )
        headers = {k.lower(): v for k, v in echoed["headers"]}
        assert headers["x-user-email"] == user["email"]
        assert "cookie" not in headers
