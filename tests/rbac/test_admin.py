"""Admin API: who may call it, and that sessions follow every change at once."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import httpx

from tests.rbac.conftest import PASSWORD, Account

API = "/api/v1"
NewAccount = Callable[..., Awaitable[Account]]


async def test_admin_routes_need_a_token_and_the_permission(
    client: httpx.AsyncClient, new_account: NewAccount
) -> None:
    viewer = await new_account()
    for method, path in [
        ("GET", "/admin/users"),
        ("PATCH", f"/admin/users/{uuid.uuid4()}"),
        ("GET", "/admin/roles"),
        ("POST", "/admin/roles"),
        ("PUT", "/admin/roles/viewer"),
        ("GET", "/admin/audit"),
    ]:
        anonymous = await client.request(method, API + path, json={})
        assert anonymous.status_code == 401, path
        assert anonymous.json()["error"]["code"] == "UNAUTHORIZED"
        denied = await client.request(method, API + path, json={}, headers=viewer.headers)
        assert denied.status_code == 403, path
        assert denied.json()["error"]["code"] == "FORBIDDEN"


async def test_list_users_paginates_and_filters(
    client: httpx.AsyncClient, admin: Account, new_account: NewAccount
) -> None:
    others = [await new_account() for _ in range(3)]
    r = await client.get(f"{API}/admin/users", params={"page_size": 2}, headers=admin.headers)
    assert r.status_code == 200
    page = r.json()["result"]
    assert len(page["items"]) == 2 and page["total"] >= 4 and page["page"] == 1
    one = await client.get(
        f"{API}/admin/users", params={"email": others[0].email.upper()}, headers=admin.headers
    )
    assert [u["email"] for u in one.json()["result"]["items"]] == [others[0].email]
    admins = await client.get(f"{API}/admin/users", params={"role": "admin"}, headers=admin.headers)
    assert admin.email in [u["email"] for u in admins.json()["result"]["items"]]
    assert all("admin" in u["roles"] for u in admins.json()["result"]["items"])
    wildcard = await client.get(f"{API}/admin/users", params={"email": "%"}, headers=admin.headers)
    assert wildcard.json()["result"]["total"] == 0  # LIKE metacharacters are literal
    bad = await client.get(f"{API}/admin/users", params={"page": 0}, headers=admin.headers)
    assert bad.status_code == 422


async def test_role_change_reaches_live_sessions(
    client: httpx.AsyncClient, admin: Account, new_account: NewAccount
) -> None:
    user = await new_account()
    assert (await client.get(f"{API}/admin/audit", headers=user.headers)).status_code == 403
    r = await client.patch(
        f"{API}/admin/users/{user.id}", json={"roles": ["admin"]}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["result"]["roles"] == ["admin"]
    # The same access token, no new login: the session snapshot was updated.
    me = await client.get(f"{API}/auth/me", headers=user.headers)
    assert me.json()["result"]["permissions"] == ["*"]
    assert (await client.get(f"{API}/admin/audit", headers=user.headers)).status_code == 200
    await client.patch(
        f"{API}/admin/users/{user.id}", json={"roles": ["viewer"]}, headers=admin.headers
    )
    assert (await client.get(f"{API}/admin/audit", headers=user.headers)).status_code == 403


async def test_disabling_a_user_revokes_its_sessions(
    client: httpx.AsyncClient, admin: Account, new_account: NewAccount
) -> None:
    user = await new_account()
    r = await client.patch(
        f"{API}/admin/users/{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["result"]["is_active"] is False
    me = await client.get(f"{API}/auth/me", headers=user.headers)
    assert me.status_code == 401 and me.json()["error"]["code"] == "SESSION_REVOKED"
    refresh = await client.post(
        f"{API}/auth/refresh", headers={"Authorization": f"Bearer {user.refresh}"}
    )
    assert refresh.json()["error"]["code"] == "SESSION_REVOKED"
    login = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 403 and login.json()["error"]["code"] == "ACCOUNT_DISABLED"


async def test_admin_cannot_change_itself_and_input_is_checked(
    client: httpx.AsyncClient, admin: Account, new_account: NewAccount
) -> None:
    user = await new_account()
    own = await client.patch(
        f"{API}/admin/users/{admin.id}", json={"is_active": False}, headers=admin.headers
    )
    assert own.status_code == 403
    unknown_role = await client.patch(
        f"{API}/admin/users/{user.id}", json={"roles": ["emperor"]}, headers=admin.headers
    )
    assert unknown_role.status_code == 422
    extra = await client.patch(
        f"{API}/admin/users/{user.id}", json={"email": "x@example.com"}, headers=admin.headers
    )
    assert extra.status_code == 422
    for bad_id in ("not-a-uuid", str(uuid.uuid4()), "1' OR '1'='1"):
        missing = await client.patch(f"{API}/admin/users/{bad_id}", json={}, headers=admin.headers)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


async def test_roles_create_update_and_holders_follow(
    client: httpx.AsyncClient, admin: Account, new_account: NewAccount
) -> None:
    name = f"auditor-{uuid.uuid4().hex[:6]}"
    created = await client.post(
        f"{API}/admin/roles",
        json={"name": name, "permissions": ["dashboard:read"]},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["result"]["permissions"] == ["dashboard:read"]
    dup = await client.post(f"{API}/admin/roles", json={"name": name}, headers=admin.headers)
    assert dup.status_code == 409
    bad = await client.post(
        f"{API}/admin/roles", json={"name": "x y", "permissions": ["NOPE"]}, headers=admin.headers
    )
    assert bad.status_code == 422

    holder = await new_account()
    await client.patch(
        f"{API}/admin/users/{holder.id}", json={"roles": [name]}, headers=admin.headers
    )
    assert (await client.get(f"{API}/admin/audit", headers=holder.headers)).status_code == 403
    updated = await client.put(
        f"{API}/admin/roles/{name}",
        json={"permissions": ["audit:read", "dashboard:read"]},
        headers=admin.headers,
    )
    assert updated.status_code == 200
    assert (await client.get(f"{API}/admin/audit", headers=holder.headers)).status_code == 200
    listed = await client.get(f"{API}/admin/roles", headers=admin.headers)
    names = {r["name"] for r in listed.json()["result"]}
    assert {"admin", "analyst", "viewer", name} <= names
    missing = await client.put(
        f"{API}/admin/roles/nope-role", json={"permissions": []}, headers=admin.headers
    )
    assert missing.status_code == 404


async def test_audit_query_filters_and_pages(
    client: httpx.AsyncClient, admin: Account, new_account: NewAccount
) -> None:
    user = await new_account()
    await client.patch(
        f"{API}/admin/users/{user.id}",
        json={"roles": ["analyst"]},
        headers={**admin.headers, "X-Request-ID": "admin-change-1"},
    )
    r = await client.get(
        f"{API}/admin/audit",
        params={"action": "admin.user_update", "actor": admin.id},
        headers=admin.headers,
    )
    items = r.json()["result"]["items"]
    assert len(items) == 1
    event = items[0]
    assert event["target"] == user.id and event["request_id"] == "admin-change-1"
    assert event["details"] == {
        "before": {"roles": ["viewer"], "is_active": True},
        "after": {"roles": ["analyst"], "is_active": True},
    }
    by_email = await client.get(
        f"{API}/admin/audit", params={"actor": user.email}, headers=admin.headers
    )
    assert {e["action"] for e in by_email.json()["result"]["items"]} >= {
        "auth.register",
        "auth.login",
    }

    seen: list[int] = []
    order: list[tuple[datetime, int]] = []
    cursor = None
    for _ in range(50):
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get(f"{API}/admin/audit", params=params, headers=admin.headers)
        ).json()["result"]
        seen.extend(e["id"] for e in page["items"])
        order.extend((datetime.fromisoformat(e["occurred_at"]), e["id"]) for e in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 5
    # Newest first by time, then id; ids alone need not follow time across transactions.
    assert order == sorted(order, reverse=True)
    future = await client.get(
        f"{API}/admin/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=admin.headers
    )
    assert future.json()["result"]["items"] == []
    bad = await client.get(f"{API}/admin/audit", params={"cursor": "!!"}, headers=admin.headers)
    assert bad.status_code == 422
