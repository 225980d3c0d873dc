"""Each identity event leaves one audit row tied to the request that caused it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.audit.service import Action
from app.core.config import Settings
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
    running,
    update_user,
)

UA = "audit-test-agent/1.0"


def _headers(request_id: str, token: str | None = None) -> dict[str, str]:
    headers = {"X-Request-ID": request_id, "User-Agent": UA}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _rid(tag: str) -> str:
    return f"audit-{tag}-{uuid.uuid4().hex[:12]}"


async def _rows(state: dict[str, Any], request_id: str) -> list[AuditEvent]:
    async with state["sessions"]() as db:
        query = select(AuditEvent).where(AuditEvent.request_id == request_id)
        return list((await db.execute(query.order_by(AuditEvent.id))).scalars())


async def _one(
    state: dict[str, Any], response: httpx.Response, action: str, outcome: str
) -> AuditEvent:
    request_id = response.headers["x-request-id"]
    rows = await _rows(state, request_id)
    assert len(rows) == 1, [(r.action, r.outcome) for r in rows]
    row = rows[0]
    assert row.action == action
    assert row.outcome == outcome
    assert row.request_id == request_id
    assert row.client_ip == "127.0.0.1"
    assert row.user_agent == UA
    assert row.occurred_at is not None and row.occurred_at.tzinfo is not None
    assert PASSWORD not in str(row.details or "")
    return row


async def test_identity_events_are_audited(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    email = new_email("audit")

    rid = _rid("register")
    response = await client.post(
        f"{AUTH}/register", json={"email": email, "password": PASSWORD}, headers=_headers(rid)
    )
    user = assert_ok(response, 201)["user"]
    assert response.headers["x-request-id"] == rid
    row = await _one(state, response, Action.REGISTER, "success")
    assert str(row.actor_id) == user["id"]
    assert row.actor_email == email
    assert row.target == user["id"]

    rid = _rid("register-dup")
    response = await client.post(
        f"{AUTH}/register", json={"email": email, "password": PASSWORD}, headers=_headers(rid)
    )
    assert_error(response, 409, "EMAIL_TAKEN")
    row = await _one(state, response, Action.REGISTER, "failure")
    assert row.actor_id is None
    assert row.details == {"reason": "email_taken"}

    rid = _rid("login-bad")
    response = await client.post(
        f"{AUTH}/login", json={"email": email, "password": "wrong password"}, headers=_headers(rid)
    )
    assert_error(response, 401, "INVALID_CREDENTIALS")
    row = await _one(state, response, Action.LOGIN, "failure")
    assert row.actor_email == email
    assert row.details == {"reason": "bad_credentials"}
    assert "wrong password" not in str(row.details)

    rid = _rid("login-unknown")
    unknown = new_email("ghost")
    response = await client.post(
        f"{AUTH}/login",
        json={"email": unknown, "password": "wrong password"},
        headers=_headers(rid),
    )
    row = await _one(state, response, Action.LOGIN, "failure")
    assert row.actor_id is None and row.actor_email == unknown

    rid = _rid("login")
    response = await client.post(
        f"{AUTH}/login", json={"email": email, "password": PASSWORD}, headers=_headers(rid)
    )
    pair = assert_ok(response)
    row = await _one(state, response, Action.LOGIN, "success")
    assert str(row.actor_id) == user["id"]
    sid = claims_of(pair["access_token"])["sid"]

    rid = _rid("refresh")
    response = await client.post(f"{AUTH}/refresh", headers=_headers(rid, pair["refresh_token"]))
    rotated = assert_ok(response)
    row = await _one(state, response, Action.REFRESH, "success")
    assert str(row.actor_id) == user["id"]
    assert row.target == sid

    rid = _rid("reuse")
    response = await client.post(f"{AUTH}/refresh", headers=_headers(rid, pair["refresh_token"]))
    assert_error(response, 401, "TOKEN_REUSED")
    row = await _one(state, response, Action.TOKEN_REUSE, "failure")
    assert str(row.actor_id) == user["id"]
    assert row.target == sid
    assert_error(
        await client.get(f"{AUTH}/me", headers=bearer(rotated["access_token"])),
        401,
        "SESSION_REVOKED",
    )

    pair = assert_ok(
        await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    )
    new_password = "a different passphrase"

    rid = _rid("password-bad")
    response = await client.post(
        f"{AUTH}/password",
        json={"current_password": "not it at all", "new_password": new_password},
        headers=_headers(rid, pair["access_token"]),
    )
    assert_error(response, 401, "INVALID_CREDENTIALS")
    row = await _one(state, response, Action.PASSWORD_CHANGE, "failure")
    assert new_password not in str(row.details)

    rid = _rid("password")
    response = await client.post(
        f"{AUTH}/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=_headers(rid, pair["access_token"]),
    )
    assert_ok(response)
    row = await _one(state, response, Action.PASSWORD_CHANGE, "success")
    assert str(row.actor_id) == user["id"] and row.actor_email == email
    assert new_password not in str(row.details)

    rid = _rid("logout")
    response = await client.post(f"{AUTH}/logout", headers=_headers(rid, pair["access_token"]))
    assert_ok(response)
    row = await _one(state, response, Action.LOGOUT, "success")
    assert str(row.actor_id) == user["id"]
    assert row.target == claims_of(pair["access_token"])["sid"]


async def test_disabled_login_and_session_revoke_are_audited(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    user, keep = await account(client)
    drop = await login(client, user["email"])
    drop_sid = claims_of(drop["access_token"])["sid"]
    rid = _rid("revoke")
    response = await client.delete(
        f"{AUTH}/sessions/{drop_sid}", headers=_headers(rid, keep["access_token"])
    )
    assert_ok(response)
    row = await _one(state, response, Action.SESSION_REVOKE, "success")
    assert row.target == drop_sid

    await update_user(state, user["email"], is_active=False)
    rid = _rid("disabled")
    response = await client.post(
        f"{AUTH}/login", json={"email": user["email"], "password": PASSWORD}, headers=_headers(rid)
    )
    assert_error(response, 403, "ACCOUNT_DISABLED")
    row = await _one(state, response, Action.LOGIN, "failure")
    assert row.details == {"reason": "disabled"}


async def test_generated_request_id_is_the_one_recorded(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    # A malformed client id is replaced; the row carries the id the response announced.
    response = await client.post(
        f"{AUTH}/register",
        json={"email": new_email("rid"), "password": PASSWORD},
        headers={"X-Request-ID": "not a valid id!", "User-Agent": UA},
    )
    assert_ok(response, 201)
    assert response.headers["x-request-id"] != "not a valid id!"
    await _one(state, response, Action.REGISTER, "success")


async def test_forwarded_client_ip_is_recorded_behind_a_trusted_proxy(
    make_settings: Callable[..., Settings],
) -> None:
    async with running(make_settings(trusted_proxies="127.0.0.1")) as (client, state):
        rid = _rid("xff")
        headers = {**_headers(rid), "X-Forwarded-For": "198.51.100.7"}
        response = await client.post(
            f"{AUTH}/login", json={"email": new_email(), "password": "whatever"}, headers=headers
        )
        assert_error(response, 401, "INVALID_CREDENTIALS")
        rows = await _rows(state, rid)
        assert [r.client_ip for r in rows] == ["198.51.100.7"]
