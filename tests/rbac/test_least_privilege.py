"""Least privilege for administrators: a caller grants only what its own permissions cover."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.identity.permissions import uncovered
from tests.rbac.conftest import Account

API = "/api/v1"
NewAccount = Callable[..., Awaitable[Account]]
VIEWER = ("nexus:read", "zen:chat", "agents:read", "ingestion:read", "dashboard:read")


@pytest.mark.parametrize(
    ("held", "wanted", "missing"),
    [
        (["*"], ["*", "nexus:*", "admin:roles"], []),
        (["nexus:*"], ["nexus:read", "nexus:*"], []),
        (["nexus:*"], ["*"], ["*"]),
        (["nexus:read"], ["nexus:*", "nexus:read"], ["nexus:*"]),
        (["admin:roles"], ["admin:roles", "admin:users", "zen:chat"], ["admin:users", "zen:chat"]),
        ([], ["dashboard:read"], ["dashboard:read"]),
    ],
)
def test_uncovered(held: list[str], wanted: list[str], missing: list[str]) -> None:
    assert uncovered(held, wanted) == missing


async def _role(client: httpx.AsyncClient, admin: Account, *permissions: str) -> str:
    name = f"r-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        f"{API}/admin/roles",
        json={"name": name, "permissions": list(permissions)},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    return name


async def _holder(
    client: httpx.AsyncClient, admin: Account, new_account: NewAccount, *permissions: str
) -> tuple[Account, str]:
    """A fresh account holding exactly one new role with `permissions`."""
    name = await _role(client, admin, *permissions)
    account = await new_account()
    r = await client.patch(
        f"{API}/admin/users/{account.id}", json={"roles": [name]}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    return account, name


def _forbidden(response: httpx.Response, *missing: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "FORBIDDEN"
    assert set(missing) <= set(error["details"]["uncovered"]), error


async def _denied(state: dict[str, Any], actor: Account, action: str) -> list[AuditEvent]:
    async with state["sessions"]() as db:
        rows = await db.execute(
            select(AuditEvent).where(
                AuditEvent.actor_id == uuid.UUID(actor.id),
                AuditEvent.action == action,
                AuditEvent.outcome == "denied",
            )
        )
        return list(rows.scalars())


async def test_a_roles_admin_cannot_widen_its_own_role(
    client: httpx.AsyncClient, state: dict[str, Any], admin: Account, new_account: NewAccount
) -> None:
    roles_admin, own = await _holder(client, admin, new_account, "admin:roles")
    widened = await client.put(
        f"{API}/admin/roles/{own}", json={"permissions": ["*"]}, headers=roles_admin.headers
    )
    _forbidden(widened, "*")
    # Keeping its own role as it is widens nothing.
    same = await client.put(
        f"{API}/admin/roles/{own}",
        json={"permissions": ["admin:roles"]},
        headers=roles_admin.headers,
    )
    assert same.status_code == 200, same.text
    assert len(await _denied(state, roles_admin, "admin.role_update")) == 1
    # Nothing changed: the real admin is still out of its reach.
    roles = (await client.get(f"{API}/admin/roles", headers=admin.headers)).json()["result"]
    assert next(r for r in roles if r["name"] == own)["permissions"] == ["admin:roles"]
    attack = await client.patch(
        f"{API}/admin/users/{admin.id}", json={"is_active": False}, headers=roles_admin.headers
    )
    assert attack.status_code == 403


async def test_a_roles_admin_creates_and_edits_only_covered_roles(
    client: httpx.AsyncClient, state: dict[str, Any], admin: Account, new_account: NewAccount
) -> None:
    caller, _ = await _holder(client, admin, new_account, "admin:roles", "nexus:*")
    too_much = await client.post(
        f"{API}/admin/roles",
        json={"name": f"x-{uuid.uuid4().hex[:8]}", "permissions": ["nexus:read", "zen:*"]},
        headers=caller.headers,
    )
    _forbidden(too_much, "zen:*")
    everything = await client.post(
        f"{API}/admin/roles",
        json={"name": f"x-{uuid.uuid4().hex[:8]}", "permissions": ["*"]},
        headers=caller.headers,
    )
    _forbidden(everything, "*")
    covered = await client.post(
        f"{API}/admin/roles",
        json={"name": f"x-{uuid.uuid4().hex[:8]}", "permissions": ["nexus:*", "nexus:read"]},
        headers=caller.headers,
    )
    assert covered.status_code == 201, covered.text
    # Another role (not its own) may be edited within its cover, not beyond.
    other = await _role(client, admin, "nexus:read")
    ok = await client.put(
        f"{API}/admin/roles/{other}", json={"permissions": ["nexus:write"]}, headers=caller.headers
    )
    assert ok.status_code == 200, ok.text
    beyond = await client.put(
        f"{API}/admin/roles/{other}", json={"permissions": ["admin:users"]}, headers=caller.headers
    )
    _forbidden(beyond, "admin:users")
    assert len(await _denied(state, caller, "admin.role_create")) == 2
    assert len(await _denied(state, caller, "admin.role_update")) == 1


async def test_a_users_admin_assigns_only_covered_roles(
    client: httpx.AsyncClient, state: dict[str, Any], admin: Account, new_account: NewAccount
) -> None:
    users_admin, own = await _holder(client, admin, new_account, "admin:users", *VIEWER)
    target = await new_account()  # a viewer: covered
    promote = await client.patch(
        f"{API}/admin/users/{target.id}", json={"roles": ["admin"]}, headers=users_admin.headers
    )
    _forbidden(promote, "*")
    assert (await client.get(f"{API}/admin/audit", headers=target.headers)).status_code == 403
    # A narrow role it covers: fine.
    narrow = await _role(client, admin, "zen:chat")
    ok = await client.patch(
        f"{API}/admin/users/{target.id}", json={"roles": [narrow]}, headers=users_admin.headers
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["result"]["roles"] == [narrow]
    # Its own role is covered by definition.
    same = await client.patch(
        f"{API}/admin/users/{target.id}", json={"roles": [own]}, headers=users_admin.headers
    )
    assert same.status_code == 200, same.text
    # An analyst holds more than this caller: out of its reach, even to make it a viewer.
    analyst = await new_account("analyst")
    demote = await client.patch(
        f"{API}/admin/users/{analyst.id}", json={"roles": ["viewer"]}, headers=users_admin.headers
    )
    _forbidden(demote, "nexus:*")
    assert len(await _denied(state, users_admin, "admin.user_update")) == 2


async def test_a_weaker_admin_cannot_disable_or_demote_a_stronger_user(
    client: httpx.AsyncClient, state: dict[str, Any], admin: Account, new_account: NewAccount
) -> None:
    users_admin, _ = await _holder(client, admin, new_account, "admin:users")
    disable = await client.patch(
        f"{API}/admin/users/{admin.id}", json={"is_active": False}, headers=users_admin.headers
    )
    _forbidden(disable, "*")
    demote = await client.patch(
        f"{API}/admin/users/{admin.id}", json={"roles": []}, headers=users_admin.headers
    )
    _forbidden(demote, "*")
    assert (await client.get(f"{API}/admin/users", headers=admin.headers)).status_code == 200
    assert len(await _denied(state, users_admin, "admin.user_update")) == 2
    # A user whose permissions it covers can be disabled.
    peer, _ = await _holder(client, admin, new_account, "admin:users")
    ok = await client.patch(
        f"{API}/admin/users/{peer.id}", json={"is_active": False}, headers=users_admin.headers
    )
    assert ok.status_code == 200, ok.text
