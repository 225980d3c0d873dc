"""Login: uniform failures, disabled accounts, legacy hashes, the OAuth2 form endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from passlib.hash import pbkdf2_sha256

from app.auth import passwords
from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    account,
    assert_error,
    assert_ok,
    bearer,
    grant_roles,
    load_user,
    login,
    new_email,
    register,
    update_user,
)


def _comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """Status, body and headers without what differs between any two requests."""
    skip = {"x-request-id", "ratelimit-remaining", "ratelimit-reset", "date", "content-length"}
    headers = {k: v for k, v in response.headers.items() if k not in skip}
    return response.status_code, response.json(), headers


async def test_unknown_email_and_wrong_password_read_the_same(client: httpx.AsyncClient) -> None:
    user = await register(client)
    wrong = await client.post(
        f"{AUTH}/login",
        json={"email": user["email"], "password": "not the password"},
        headers={"X-Request-ID": "wrong-password"},
    )
    unknown = await client.post(
        f"{AUTH}/login",
        json={"email": new_email("nobody"), "password": "not the password"},
        headers={"X-Request-ID": "unknown-email"},
    )
    assert_error(wrong, 401, "INVALID_CREDENTIALS")
    assert_error(unknown, 401, "INVALID_CREDENTIALS")
    assert _comparable(wrong) == _comparable(unknown)
    assert wrong.content == unknown.content
    assert wrong.headers["x-request-id"] == "wrong-password"
    assert unknown.headers["x-request-id"] == "unknown-email"


async def test_wrong_password_case_or_whitespace_is_refused(client: httpx.AsyncClient) -> None:
    user = await register(client)
    for attempt in (PASSWORD.upper(), PASSWORD + " ", " " + PASSWORD, PASSWORD[:-1]):
        response = await client.post(
            f"{AUTH}/login", json={"email": user["email"], "password": attempt}
        )
        assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_login_email_is_trimmed_and_case_insensitive(client: httpx.AsyncClient) -> None:
    user = await register(client)
    pair = await login(client, f"  {user['email'].upper()}  ")
    assert pair["user"]["id"] == user["id"]


async def test_disabled_account_is_refused(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    user = await register(client)
    await update_user(state, user["email"], is_active=False)
    response = await client.post(
        f"{AUTH}/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert_error(response, 403, "ACCOUNT_DISABLED")
    assert "access_token" not in response.text
    # A wrong password says nothing about the account's status.
    wrong = await client.post(
        f"{AUTH}/login", json={"email": user["email"], "password": "nope-nope"}
    )
    assert_error(wrong, 401, "INVALID_CREDENTIALS")
    # Nor does the OAuth2 form endpoint.
    form = await client.post(
        f"{AUTH}/token", data={"username": user["email"], "password": PASSWORD}
    )
    assert form.status_code == 400
    assert form.json() == {"error": "invalid_grant"}


async def test_legacy_pbkdf2_hash_is_upgraded_on_login(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    user = await register(client)
    legacy = pbkdf2_sha256.hash(PASSWORD)
    await update_user(state, user["email"], password_hash=legacy)
    stored = await load_user(state, user["email"])
    assert stored is not None and stored.password_hash.startswith("$pbkdf2-sha256$")

    # A wrong password neither logs in nor rewrites the hash.
    wrong = await client.post(
        f"{AUTH}/login", json={"email": user["email"], "password": "nope-nope"}
    )
    assert_error(wrong, 401, "INVALID_CREDENTIALS")
    stored = await load_user(state, user["email"])
    assert stored is not None and stored.password_hash == legacy

    await login(client, user["email"])
    stored = await load_user(state, user["email"])
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in stored.password_hash
    # The upgraded hash still verifies the same password.
    await login(client, user["email"])


async def test_new_hashes_are_argon2id(client: httpx.AsyncClient, state: dict[str, Any]) -> None:
    user = await register(client)
    stored = await load_user(state, user["email"])
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


async def test_login_sets_last_login_at(client: httpx.AsyncClient, state: dict[str, Any]) -> None:
    user = await register(client)
    assert user["last_login_at"] is None
    pair = await login(client, user["email"])
    assert pair["user"]["last_login_at"] is not None
    stored = await load_user(state, user["email"])
    assert stored is not None and stored.last_login_at is not None
    assert stored.updated_at >= stored.last_login_at
    # The user in the login answer reads like the one `/me` builds from the stored account.
    me = assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
    assert me == pair["user"]


async def test_login_answer_carries_every_role_and_permission(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    user = await register(client)
    await grant_roles(state, user["email"], ["admin", "viewer"])
    pair = await login(client, user["email"])
    me = assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
    assert pair["user"]["roles"] == ["admin", "viewer"]
    assert pair["user"]["permissions"] == me["permissions"]
    # admin's "*" and viewer's own, each once: one row per grant, folded
    assert pair["user"]["permissions"][0] == "*" and len(me["permissions"]) > 3


async def test_account_disabled_while_its_password_is_checked_gets_no_session(
    client: httpx.AsyncClient, state: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await register(client)
    verify = passwords.verify_password

    async def disable_meanwhile(password: str, stored: str) -> tuple[bool, str | None]:
        await update_user(state, user["email"], is_active=False)
        return await verify(password, stored)

    monkeypatch.setattr(passwords, "verify_password", disable_meanwhile)
    response = await client.post(
        f"{AUTH}/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert_error(response, 403, "ACCOUNT_DISABLED")
    stored = await load_user(state, user["email"])
    assert stored is not None and stored.last_login_at is None
    sessions = state["auth"].sessions
    assert await sessions.session_ids(str(stored.id)) == []


async def test_login_holds_no_database_connection_while_hashing(
    client: httpx.AsyncClient, state: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storm of logins queues at the hashing pool without taking the database pool along."""
    user = await register(client)
    pool = state["engine"].pool
    held: list[int] = []
    verify = passwords.verify_password

    async def watched(password: str, stored: str) -> tuple[bool, str | None]:
        held.append(pool.checkedout())
        return await verify(password, stored)

    monkeypatch.setattr(passwords, "verify_password", watched)
    await login(client, user["email"])
    bad = await client.post(f"{AUTH}/login", json={"email": user["email"], "password": "nope-1"})
    assert_error(bad, 401, "INVALID_CREDENTIALS")
    assert held == [0, 0]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "a@example.com"},
        {"password": "whatever-1"},
        {"email": "", "password": "whatever-1"},
        {"email": "a@example.com", "password": ""},
        {"email": "a@example.com", "password": "whatever-1", "remember": True},
        {"email": ["a@example.com"], "password": "whatever-1"},
        {"email": "a@example.com", "password": "x" * 1025},
    ],
)
async def test_login_validation(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    response = await client.post(f"{AUTH}/login", json=payload)
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert "whatever-1" not in response.text  # the input is never echoed
    assert isinstance(body["error"]["details"], list)


@pytest.mark.parametrize(
    "email",
    ["nul\x00@example.com", "ctrl\x07@example.com", "a@exa\x00mple.com", "\ud800@example.com"],
)
async def test_login_with_hostile_email_is_not_a_server_error(
    client: httpx.AsyncClient, email: str
) -> None:
    # Nothing an anonymous caller sends to /login may produce a 500.
    response = await client.post(
        f"{AUTH}/login",
        content=f'{{"email": "{_escape(email)}", "password": "whatever-1"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (401, 422), response.text
    code = response.json()["error"]["code"]
    assert code in ("INVALID_CREDENTIALS", "VALIDATION_ERROR")


@pytest.mark.parametrize("username", ["nul\x00@example.com", "a@exa\x00mple.com"])
async def test_token_endpoint_with_nul_username_is_invalid_grant(
    client: httpx.AsyncClient, username: str
) -> None:
    response = await client.post(
        f"{AUTH}/token", data={"username": username, "password": "whatever-1"}
    )
    assert response.status_code in (400, 422), response.text
    if response.status_code == 400:
        assert response.json() == {"error": "invalid_grant"}


@pytest.mark.parametrize("password", ["nul\x00password", "\ud800\ud800\ud800\ud800\ud800xyz"])
async def test_login_with_hostile_password_is_not_a_server_error(
    client: httpx.AsyncClient, password: str
) -> None:
    user = await register(client)
    response = await client.post(
        f"{AUTH}/login",
        content=f'{{"email": "{user["email"]}", "password": "{_escape(password)}"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (401, 422), response.text


def _escape(value: str) -> str:
    """JSON string content with every non-printable or non-ASCII code point escaped."""
    return "".join(
        c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else f"\\u{ord(c):04x}" for c in value
    )


async def test_token_endpoint_returns_a_raw_rfc6749_body(client: httpx.AsyncClient) -> None:
    user = await register(client)
    response = await client.post(
        f"{AUTH}/token", data={"username": user["email"], "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]
    me = assert_ok(await client.get(f"{AUTH}/me", headers=bearer(body["access_token"])))
    assert me["id"] == user["id"]
    assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(body["refresh_token"])))


@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
async def test_token_endpoint_invalid_grant(client: httpx.AsyncClient, who: str) -> None:
    user = await register(client)
    username = user["email"] if who == "wrong-password" else new_email("nobody")
    response = await client.post(
        f"{AUTH}/token", data={"username": username, "password": "not the password"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant"}
    assert response.headers["cache-control"] == "no-store"


async def test_auth_responses_are_not_cacheable(client: httpx.AsyncClient) -> None:
    email = new_email()
    responses = [
        await client.post(f"{AUTH}/register", json={"email": email, "password": PASSWORD}),
        await client.post(f"{AUTH}/register", json={"email": email, "password": PASSWORD}),
        await client.post(f"{AUTH}/login", json={"email": email, "password": "wrong-wrong"}),
        await client.post(f"{AUTH}/login", json={"email": "x"}),
    ]
    pair = await login(client, email)
    responses += [
        await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD}),
        await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])),
        await client.get(f"{AUTH}/me"),
        await client.get(f"{AUTH}/sessions", headers=bearer(pair["access_token"])),
        await client.delete(f"{AUTH}/sessions/nope", headers=bearer(pair["access_token"])),
        await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"])),
        await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"])),
        await client.post(f"{AUTH}/token", data={"username": email, "password": "wrong"}),
    ]
    assert [r.status_code for r in responses] == [
        201, 409, 401, 422, 200, 200, 401, 200, 404, 200, 401, 400
    ]  # fmt: skip
    for r in responses:
        assert r.headers.get("cache-control") == "no-store", (r.request.url, r.status_code)
        assert r.headers.get("pragma") == "no-cache"


async def test_concurrent_logins_open_separate_sessions(client: httpx.AsyncClient) -> None:
    user, _ = await account(client)
    pairs = await asyncio.gather(*(login(client, user["email"]) for _ in range(5)))
    sids = {p["access_token"] for p in pairs}
    assert len(sids) == 5
    listed = assert_ok(
        await client.get(f"{AUTH}/sessions", headers=bearer(pairs[0]["access_token"]))
    )
    assert len(listed["sessions"]) == 6
