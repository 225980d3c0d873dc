"""Password change is limited like login: per account and per client IP, one budget for every
route that checks a password, refused before anything is hashed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.auth import passwords
from app.core.config import Settings
from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    assert_error,
    assert_ok,
    bearer,
    load_user,
    login,
    register,
    running,
)

pytestmark = pytest.mark.services
NEW = "another long passphrase"
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


@asynccontextmanager
async def studio(
    make_settings: Callable[..., Settings], attempts: int
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    settings = make_settings(
        rate_limit_login_attempts=attempts,
        rate_limit_login_window=60,
        trusted_proxies="127.0.0.1",
    )
    async with running(settings) as (client, state):
        yield client, state


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the app verifies, in order."""
    seen: list[str] = []
    real = passwords.verify_password

    async def counting(password: str, stored_hash: str) -> tuple[bool, str | None]:
        seen.append(password)
        return await real(password, stored_hash)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return seen


def ip(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _change(
    client: httpx.AsyncClient, token: str, current: str, address: str, new: str = NEW
) -> httpx.Response:
    return await client.post(
        f"{AUTH}/password",
        json={"current_password": current, "new_password": new},
        headers={**bearer(token), **ip(address)},
    )


def _assert_limited(response: httpx.Response, limit: int) -> None:
    body = assert_error(response, 429, "RATE_LIMITED")
    assert response.headers["retry-after"].isdigit()
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert response.headers["ratelimit-reset"].isdigit()
    assert body["error"]["details"] == {"retry_after": int(response.headers["retry-after"])}


async def _user(client: httpx.AsyncClient, address: str) -> tuple[dict[str, Any], str]:
    """A fresh account logged in once from `address`: (user, access token)."""
    user = await register(client)
    pair = await login(client, user["email"], headers=ip(address))
    return user, pair["access_token"]


async def test_password_guesses_limited_per_account(
    make_settings: Callable[..., Settings], verifications: list[str]
) -> None:
    async with studio(make_settings, attempts=4) as (client, state):
        user, token = await _user(client, "198.51.100.1")  # the login took one of four
        verifications.clear()
        remaining = []
        for i in range(3):  # each guess from a fresh address: the account's budget is spent
            response = await _change(client, token, f"guess {i}", f"203.0.113.{i + 1}")
            assert_error(response, 401, "INVALID_CREDENTIALS")
            assert all(response.headers[h].isdigit() for h in RATE_HEADERS)
            remaining.append(int(response.headers["ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        before = await load_user(state, user["email"])
        # Over the limit even the right password is refused, before it is checked.
        _assert_limited(await _change(client, token, PASSWORD, "203.0.113.50"), 4)
        _assert_limited(await _change(client, token, "guess 4", "203.0.113.51"), 4)
        assert verifications == ["guess 0", "guess 1", "guess 2"]
        after = await load_user(state, user["email"])
        assert before is not None and after is not None
        assert after.password_hash == before.password_hash
        # The session itself is untouched.
        assert_ok(await client.get(f"{AUTH}/me", headers=bearer(token)))


async def test_password_guesses_limited_per_client_ip(
    make_settings: Callable[..., Settings], verifications: list[str]
) -> None:
    async with studio(make_settings, attempts=3) as (client, _):
        tokens = [(await _user(client, f"198.51.100.{i + 1}"))[1] for i in range(4)]
        verifications.clear()
        for _ in range(5):  # without a session nothing is verified, and nothing is counted
            response = await client.post(
                f"{AUTH}/password",
                json={"current_password": "x", "new_password": NEW},
                headers=ip("203.0.113.9"),
            )
            assert_error(response, 401, "UNAUTHORIZED")
        # One address, a different account each time: the address's budget is spent.
        for token in tokens[:3]:
            response = await _change(client, token, "a guess", "203.0.113.9")
            assert_error(response, 401, "INVALID_CREDENTIALS")
        _assert_limited(await _change(client, tokens[3], PASSWORD, "203.0.113.9"), 3)
        assert len(verifications) == 3
        # The same account from another address still may.
        assert_ok(await _change(client, tokens[3], PASSWORD, "203.0.113.10"))


async def test_login_and_password_change_share_one_budget(
    make_settings: Callable[..., Settings], verifications: list[str]
) -> None:
    # A stolen session must not double the guesses an attacker gets at the account's password.
    async with studio(make_settings, attempts=3) as (client, _):
        user, token = await _user(client, "198.51.100.1")
        await client.post(
            f"{AUTH}/login",
            json={"email": user["email"], "password": "guess at login"},
            headers=ip("198.51.100.2"),
        )
        assert_error(
            await _change(client, token, "guess at password", "198.51.100.3"),
            401,
            "INVALID_CREDENTIALS",
        )
        _assert_limited(await _change(client, token, PASSWORD, "198.51.100.4"), 3)
        login_after = await client.post(
            f"{AUTH}/login",
            json={"email": user["email"], "password": PASSWORD},
            headers=ip("198.51.100.5"),
        )
        _assert_limited(login_after, 3)


async def test_successful_changes_count_too(
    make_settings: Callable[..., Settings], verifications: list[str]
) -> None:
    async with studio(make_settings, attempts=3) as (client, _):
        _, token = await _user(client, "198.51.100.1")
        assert_ok(await _change(client, token, PASSWORD, "203.0.113.1", new=NEW))
        assert_ok(await _change(client, token, NEW, "203.0.113.2", new=PASSWORD))
        _assert_limited(await _change(client, token, PASSWORD, "203.0.113.3", new=NEW), 3)
