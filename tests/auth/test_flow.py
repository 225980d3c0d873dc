"""The whole account flow, refresh rotation, reuse detection and racing refreshes."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    account,
    assert_error,
    assert_ok,
    bearer,
    claims_of,
    login,
    new_email,
)

VIEWER = ["agents:read", "dashboard:read", "ingestion:read", "nexus:read", "zen:chat"]


async def test_register_login_me_refresh_logout(client: httpx.AsyncClient) -> None:
    email = new_email("flow")
    created = await client.post(
        f"{AUTH}/register", json={"email": email, "password": PASSWORD, "full_name": "Ada"}
    )
    user = assert_ok(created, 201)["user"]
    assert user["email"] == email
    assert user["roles"] == ["viewer"]
    assert user["is_active"] is True
    assert "password" not in created.text and "password_hash" not in created.text

    pair = await login(client, email)
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900
    assert pair["refresh_expires_in"] == 43_200  # clipped to SESSION_MAX_LIFETIME_SECONDS
    assert pair["user"]["id"] == user["id"]
    assert pair["access_token"] != pair["refresh_token"]
    access_claims = claims_of(pair["access_token"])
    refresh_claims = claims_of(pair["refresh_token"])
    assert access_claims["typ"] == "access" and refresh_claims["typ"] == "refresh"
    assert access_claims["sub"] == user["id"]
    assert access_claims["sid"] == refresh_claims["sid"]
    assert access_claims["exp"] - access_claims["iat"] == 900
    assert {"iss", "aud", "sub", "sid", "jti", "typ", "iat", "nbf", "exp"} <= set(access_claims)
    assert "roles" not in access_claims and "email" not in access_claims

    me = assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
    assert me["id"] == user["id"]
    assert me["email"] == email
    assert me["full_name"] == "Ada"
    assert me["roles"] == ["viewer"]
    assert me["permissions"] == VIEWER
    assert me["last_login_at"] is not None

    refreshed = assert_ok(
        await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"]))
    )
    assert refreshed["token_type"] == "bearer"
    assert refreshed["refresh_token"] != pair["refresh_token"]
    assert refreshed["access_token"] != pair["access_token"]
    assert claims_of(refreshed["access_token"])["sid"] == access_claims["sid"]
    # Rotation keeps the session: the older access token still works until it expires.
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(refreshed["access_token"])))

    out = await client.post(f"{AUTH}/logout", headers=bearer(refreshed["access_token"]))
    assert assert_ok(out) is None

    for token in (refreshed["access_token"], pair["access_token"]):
        assert_error(await client.get(f"{AUTH}/me", headers=bearer(token)), 401, "SESSION_REVOKED")
    assert_error(
        await client.post(f"{AUTH}/refresh", headers=bearer(refreshed["refresh_token"])),
        401,
        "SESSION_REVOKED",
    )
    assert_error(
        await client.post(f"{AUTH}/logout", headers=bearer(refreshed["access_token"])),
        401,
        "SESSION_REVOKED",
    )


async def test_logout_ends_only_that_session(client: httpx.AsyncClient) -> None:
    user, first = await account(client)
    second = await login(client, user["email"])
    assert_ok(await client.post(f"{AUTH}/logout", headers=bearer(first["access_token"])))
    assert_error(
        await client.get(f"{AUTH}/me", headers=bearer(first["access_token"])),
        401,
        "SESSION_REVOKED",
    )
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(second["access_token"])))
    assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(second["refresh_token"])))


async def test_refresh_reuse_revokes_the_session(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    first = assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"])))
    second = assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(first["refresh_token"])))

    # The first refresh token was rotated away: presenting it again is reuse.
    reused = await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"]))
    assert_error(reused, 401, "TOKEN_REUSED")
    assert reused.headers["www-authenticate"] == "Bearer"

    # The whole session is gone, including the newest tokens.
    assert_error(
        await client.get(f"{AUTH}/me", headers=bearer(second["access_token"])),
        401,
        "SESSION_REVOKED",
    )
    assert_error(
        await client.post(f"{AUTH}/refresh", headers=bearer(second["refresh_token"])),
        401,
        "SESSION_REVOKED",
    )
    # And the session no longer shows up.
    _, other = await account(client)
    sessions = assert_ok(
        await client.get(f"{AUTH}/sessions", headers=bearer(other["access_token"]))
    )
    assert claims_of(pair["access_token"])["sid"] not in {s["id"] for s in sessions["sessions"]}


async def test_reuse_of_one_session_leaves_other_sessions_alone(client: httpx.AsyncClient) -> None:
    user, victim = await account(client)
    other = await login(client, user["email"])
    assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(victim["refresh_token"])))
    assert_error(
        await client.post(f"{AUTH}/refresh", headers=bearer(victim["refresh_token"])),
        401,
        "TOKEN_REUSED",
    )
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(other["access_token"])))


async def test_twenty_concurrent_refreshes_one_winner(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)

    async def attempt() -> httpx.Response:
        return await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"]))

    responses = await asyncio.gather(*(attempt() for _ in range(20)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 401: 19}, statuses
    codes: set[Any] = {r.json()["error"]["code"] for r in responses if r.status_code == 401}
    assert codes <= {"TOKEN_REUSED", "SESSION_REVOKED"}
    assert "TOKEN_REUSED" in codes
    for r in responses:
        assert set(r.json()) == {"success", "message", "error", "result"}


async def test_refresh_pair_is_usable(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    tokens = pair
    for _ in range(3):
        tokens = assert_ok(
            await client.post(f"{AUTH}/refresh", headers=bearer(tokens["refresh_token"]))
        )
        me = assert_ok(await client.get(f"{AUTH}/me", headers=bearer(tokens["access_token"])))
        assert me["roles"] == ["viewer"]
    assert (
        len({claims_of(tokens["refresh_token"])["jti"], claims_of(pair["refresh_token"])["jti"]})
        == 2
    )
