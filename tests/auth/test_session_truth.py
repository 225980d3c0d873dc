"""A session's permission snapshot follows the database: a login racing a demotion, refresh and
cookie renewal re-reading the grants, and a disabled user whose Redis revoke failed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.auth import cookies, passwords
from app.auth.sessions import SessionStore
from app.core.config import Settings
from app.core.errors import DependencyUnavailable
from app.rbac import service as rbac
from app.rbac.models import Role
from tests.auth.helpers import (
    AUTH,
    PASSWORD,
    assert_error,
    assert_ok,
    bearer,
    grant_roles,
    login,
    register,
    running,
)
from tests.fakes.server import FakeService, make_service
from tests.support import live_server

pytestmark = pytest.mark.services

API = "/api/v1"
APP_ORIGIN = "http://app.example.com"
ZEN_USER, ZEN_PASSWORD = "svc", "zen-password"


@pytest.fixture
async def studio(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any], FakeService]]:
    """Studio with a live fake Zen behind it (a proxied route: `GET /zen/stats`)."""
    service = make_service("zen", ZEN_USER, ZEN_PASSWORD)
    async with live_server(service) as url:
        monkeypatch.setenv("ZEN_URL", url)
        monkeypatch.setenv("ZEN_SERVICE_USER", ZEN_USER)
        monkeypatch.setenv("ZEN_SERVICE_PASSWORD", ZEN_PASSWORD)
        settings = make_settings(
            cors_allow_origins=[APP_ORIGIN], jwt_access_token_expire_seconds=30
        )
        async with running(settings) as (client, state):
            yield client, state, service


async def _role(state: dict[str, Any], *permissions: str) -> str:
    """A new role of this test's own (other tests may edit the seeded ones)."""
    name = f"r-{uuid.uuid4().hex[:10]}"
    async with state["sessions"]() as db:
        perms = await rbac.permissions_named(db, list(permissions))
        db.add(Role(name=name, permissions=perms))
        await db.commit()
    return name


async def _user(
    client: httpx.AsyncClient, state: dict[str, Any], *roles: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    user = await register(client)
    if roles:
        await grant_roles(state, user["email"], list(roles))
    return user, await login(client, user["email"])


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{AUTH}/me", headers=bearer(token))


async def test_a_demotion_committed_while_login_hashes_reaches_the_new_session(
    studio: tuple[httpx.AsyncClient, dict[str, Any], FakeService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, state, _ = studio
    _, admin = await _user(client, state, "admin")
    high, low = await _role(state, "nexus:write", "zen:chat"), await _role(state, "nexus:read")
    user = await register(client)
    await grant_roles(state, user["email"], [high])

    hashing, release = asyncio.Event(), asyncio.Event()
    real_verify = passwords.verify_password

    async def held_verify(password: str, stored: str) -> tuple[bool, str | None]:
        hashing.set()
        await release.wait()
        return await real_verify(password, stored)

    monkeypatch.setattr(passwords, "verify_password", held_verify)
    pending = asyncio.create_task(
        client.post(f"{AUTH}/login", json={"email": user["email"], "password": PASSWORD})
    )
    await asyncio.wait_for(hashing.wait(), 10)
    demoted = await client.patch(
        f"{API}/admin/users/{user['id']}",
        json={"roles": [low]},
        headers=bearer(admin["access_token"]),
    )
    assert demoted.status_code == 200, demoted.text
    release.set()
    pair = assert_ok(await asyncio.wait_for(pending, 10))

    assert pair["user"]["roles"] == [low]
    me = assert_ok(await _me(client, pair["access_token"]))
    assert me["roles"] == [low] and me["permissions"] == ["nexus:read"]


async def test_refresh_carries_the_current_grants(
    studio: tuple[httpx.AsyncClient, dict[str, Any], FakeService],
) -> None:
    client, state, _ = studio
    high, low = await _role(state, "nexus:write", "zen:chat"), await _role(state, "nexus:read")
    user, pair = await _user(client, state, high)
    assert assert_ok(await _me(client, pair["access_token"]))["roles"] == [high]
    # Changed behind the sessions' back (as when the update of the live sessions was lost).
    await grant_roles(state, user["email"], [low])
    fresh = assert_ok(await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"])))
    me = assert_ok(await _me(client, fresh["access_token"]))
    assert me["roles"] == [low] and me["permissions"] == ["nexus:read"]


async def test_cookie_renewal_carries_the_current_grants(
    studio: tuple[httpx.AsyncClient, dict[str, Any], FakeService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, state, _ = studio
    high, low = await _role(state, "nexus:write", "zen:chat"), await _role(state, "nexus:read")
    user = await register(client)
    await grant_roles(state, user["email"], [high])
    assert_ok(
        await client.post(
            f"{AUTH}/login",
            json={"email": user["email"], "password": PASSWORD, "mode": "cookie"},
            headers={"Origin": APP_ORIGIN},
        )
    )
    assert assert_ok(await client.get(f"{AUTH}/me"))["roles"] == [high]
    await grant_roles(state, user["email"], [low])
    monkeypatch.setattr(cookies, "clock", lambda: time.time() + 31)  # the access grant ran out
    assert assert_ok(await client.get(f"{AUTH}/me"))["roles"] == [low]


class FailingRevokes:
    """Makes the session store's deletes fail (Redis answering reads, refusing the revoke)."""

    def __init__(self, store: SessionStore, monkeypatch: pytest.MonkeyPatch, failures: int):
        self.failures = failures
        self.calls = 0
        real = store.revoke

        async def revoke(user_id: str, sid: str) -> bool:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise DependencyUnavailable("Session store is unavailable")
            return await real(user_id, sid)

        monkeypatch.setattr(store, "revoke", revoke)


async def _disable(
    client: httpx.AsyncClient, admin: dict[str, Any], user: dict[str, Any]
) -> httpx.Response:
    return await client.patch(
        f"{API}/admin/users/{user['id']}",
        json={"is_active": False},
        headers=bearer(admin["access_token"]),
    )


async def test_a_disable_whose_revoke_failed_once_still_ends_the_sessions(
    studio: tuple[httpx.AsyncClient, dict[str, Any], FakeService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, state, zen = studio
    _, admin = await _user(client, state, "admin")
    user, pair = await _user(client, state, await _role(state, "zen:chat"))
    before = await client.get(f"{API}/zen/stats", headers=bearer(pair["access_token"]))
    assert before.status_code not in (401, 403), before.text
    FailingRevokes(state["session_store"], monkeypatch, failures=1)

    disabled = await _disable(client, admin, user)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["result"]["is_active"] is False

    zen.reset()
    proxied = await client.get(f"{API}/zen/stats", headers=bearer(pair["access_token"]))
    assert_error(proxied, 401, "SESSION_REVOKED")
    assert not zen.calls()
    assert_error(await _me(client, pair["access_token"]), 401, "SESSION_REVOKED")
    refresh = await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"]))
    assert refresh.status_code in (401, 403)
    assert refresh.json()["error"]["code"] in ("SESSION_REVOKED", "ACCOUNT_DISABLED")


async def test_a_disable_whose_revoke_keeps_failing_is_refused_and_reconciled(
    studio: tuple[httpx.AsyncClient, dict[str, Any], FakeService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, state, zen = studio
    _, admin = await _user(client, state, "admin")
    user, pair = await _user(client, state)
    failing = FailingRevokes(state["session_store"], monkeypatch, failures=10**6)

    disabled = await _disable(client, admin, user)
    assert disabled.status_code == 200, disabled.text
    # The database is the truth: refresh and /me check it, whatever Redis still holds.
    refresh = await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"]))
    assert_error(refresh, 403, "ACCOUNT_DISABLED")
    assert_error(await _me(client, pair["access_token"]), 403, "ACCOUNT_DISABLED")

    # Redis takes deletes again: the pending revocation completes without anyone asking.
    failing.failures = 0
    store: SessionStore = state["session_store"]
    remaining: list[str] = ["?"]

    async def watch() -> None:
        while remaining:
            remaining[:] = await store.session_ids(user["id"])
            await asyncio.sleep(0.05)

    await asyncio.wait_for(watch(), 30)
    zen.reset()
    proxied = await client.get(f"{API}/zen/stats", headers=bearer(pair["access_token"]))
    assert_error(proxied, 401, "SESSION_REVOKED")
    assert not zen.calls()
    refresh = await client.post(f"{AUTH}/refresh", headers=bearer(pair["refresh_token"]))
    assert refresh.status_code in (401, 403)


async def test_a_password_change_whose_revoke_failed_once_still_ends_other_sessions(
    studio: tuple[httpx.AsyncClient, dict[str, Any], FakeService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, state, _ = studio
    user, current = await _user(client, state)
    other = await login(client, user["email"])
    FailingRevokes(state["session_store"], monkeypatch, failures=1)
    changed = await client.post(
        f"{AUTH}/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=bearer(current["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    assert_error(await _me(client, other["access_token"]), 401, "SESSION_REVOKED")
    assert_ok(await _me(client, current["access_token"]))
