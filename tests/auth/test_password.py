"""Password change: the current password is checked, other sessions end, this one stays."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    account,
    assert_error,
    assert_ok,
    bearer,
    load_user,
    login,
)

NEW = "a brand new passphrase ✓"


async def _change(
    client: httpx.AsyncClient, token: str, current: str, new: str = NEW
) -> httpx.Response:
    return await client.post(
        f"{AUTH}/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(token),
    )


async def test_wrong_current_password(client: httpx.AsyncClient, state: dict[str, Any]) -> None:
    user, pair = await account(client)
    other = await login(client, user["email"])
    before = await load_user(state, user["email"])
    response = await _change(client, pair["access_token"], "not the password")
    assert_error(response, 401, "INVALID_CREDENTIALS")
    assert NEW not in response.text
    after = await load_user(state, user["email"])
    assert before is not None and after is not None
    assert after.password_hash == before.password_hash
    # Nothing was revoked and the old password still works.
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(other["access_token"])))
    await login(client, user["email"])


async def test_change_revokes_other_sessions_only(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    user, current = await account(client)
    others = [await login(client, user["email"]) for _ in range(2)]

    result = assert_ok(await _change(client, current["access_token"], PASSWORD))
    assert result == {"revoked_sessions": 2}

    for other in others:
        assert_error(
            await client.get(f"{AUTH}/me", headers=bearer(other["access_token"])),
            401,
            "SESSION_REVOKED",
        )
        assert_error(
            await client.post(f"{AUTH}/refresh", headers=bearer(other["refresh_token"])),
            401,
            "SESSION_REVOKED",
        )
    # The session that changed it carries on, refresh included.
    assert_ok(await client.get(f"{AUTH}/me", headers=bearer(current["access_token"])))
    listed = assert_ok(
        await client.get(f"{AUTH}/sessions", headers=bearer(current["access_token"]))
    )
    assert [s["current"] for s in listed["sessions"]] == [True]
    assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(current["refresh_token"])))

    # The new password logs in; the old one no longer does.
    await login(client, user["email"], NEW)
    old = await client.post(f"{AUTH}/login", json={"email": user["email"], "password": PASSWORD})
    assert_error(old, 401, "INVALID_CREDENTIALS")
    stored = await load_user(state, user["email"])
    assert stored is not None and stored.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize("new", ["x" * 7, "x" * 129, "nul\x00password", ""])
async def test_new_password_rules(client: httpx.AsyncClient, new: str) -> None:
    user, pair = await account(client)
    response = await _change(client, pair["access_token"], PASSWORD, new)
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["error"]["details"][0]["loc"] == ["body", "new_password"]
    await login(client, user["email"])


async def test_change_needs_a_live_session(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    assert_ok(await client.post(f"{AUTH}/logout", headers=bearer(pair["access_token"])))
    assert_error(await _change(client, pair["access_token"], PASSWORD), 401, "SESSION_REVOKED")


async def test_refresh_token_cannot_change_the_password(client: httpx.AsyncClient) -> None:
    _, pair = await account(client)
    assert_error(await _change(client, pair["refresh_token"], PASSWORD), 401, "TOKEN_INVALID")
