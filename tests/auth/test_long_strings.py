"""Client strings are bounded before they meet a column: an overlong email is bad input on
register and ordinary bad credentials on login and token, never a 500 nor an oracle."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.audit.service import Action, AuditContext
from app.auth import passwords
from tests.auth.helpers import (
    API,
    AUTH,
    PASSWORD,
    assert_error,
    assert_ok,
    bearer,
    grant_roles,
    login,
    register,
)

pytestmark = pytest.mark.services


def _email(length: int) -> str:
    """A syntactically valid, unique address of exactly `length` characters."""
    local = uuid.uuid4().hex * 2  # 64 characters, the most a local part may have
    body, rest = "", length - len(local) - 1 - len("com")
    while rest:
        take = 62 if rest - min(63, rest) == 1 else min(63, rest)  # labels of 62 at most
        body += "d" * (take - 1) + "."
        rest -= take
    return f"{local}@{body}com"


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = passwords.verify_password

    async def counting(password: str, stored_hash: str) -> tuple[bool, str | None]:
        seen.append(password)
        return await real(password, stored_hash)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return seen


async def _failed_logins(state: dict[str, Any], request_id: str) -> list[AuditEvent]:
    async with state["sessions"]() as db:
        query = select(AuditEvent).where(
            AuditEvent.request_id == request_id, AuditEvent.action == Action.LOGIN
        )
        return list((await db.execute(query)).scalars())


async def test_254_is_the_longest_email_everywhere(client: httpx.AsyncClient) -> None:
    longest = _email(254)
    user = await register(client, longest)
    assert user["email"] == longest
    assert (await login(client, longest))["user"]["email"] == longest
    refused = await client.post(
        f"{AUTH}/register", json={"email": _email(255), "password": PASSWORD}
    )
    body = assert_error(refused, 422, "VALIDATION_ERROR")
    assert body["error"]["details"][0]["loc"][-1] == "email"
    for length in (255, 256, 320):
        response = await client.post(
            f"{AUTH}/login", json={"email": _email(length), "password": "x"}
        )
        assert_error(response, 401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize(
    "email",
    [
        "a" * 300,
        "a" * 300 + "@example.com",
        "İ" * 320,  # 320 characters that lower-case to 640
        "x@" + "d" * 310 + ".com",
    ],
    ids=["plain", "long-local", "expands-on-lower", "long-domain"],
)
async def test_overlong_login_email_is_ordinary_bad_credentials(
    client: httpx.AsyncClient, state: dict[str, Any], verifications: list[str], email: str
) -> None:
    unknown = await client.post(
        f"{AUTH}/login", json={"email": "nobody@example.com", "password": "guess one"}
    )
    overlong = await client.post(f"{AUTH}/login", json={"email": email, "password": "guess two"})
    assert_error(overlong, 401, "INVALID_CREDENTIALS")
    # The same answer as any wrong password, after the same work: one hash checked, one row.
    assert overlong.json() == unknown.json()
    assert verifications == ["guess one", "guess two"]
    rows = await _failed_logins(state, overlong.headers["x-request-id"])
    assert [(r.outcome, r.details) for r in rows] == [("failure", {"reason": "bad_credentials"})]
    assert rows[0].target is not None and rows[0].target.startswith(email.lower()[:200])


async def test_overlong_token_username_is_invalid_grant(
    client: httpx.AsyncClient, verifications: list[str]
) -> None:
    for username in ("b" * 300, "İ" * 320):
        response = await client.post(
            f"{AUTH}/token", data={"username": username, "password": "a guess"}
        )
        assert response.status_code == 400, response.text
        assert response.json() == {"error": "invalid_grant"}
    assert verifications == ["a guess", "a guess"]


async def test_audit_rows_fit_their_columns(state: dict[str, Any]) -> None:
    # Whatever a caller passes, the audit write never overflows a column (and so never turns
    # the action it records into a 500).
    request_id = "r" * 400
    ctx = AuditContext(
        request_id=request_id,
        client_ip="c" * 100,
        user_agent="u" * 2000,
        actor_email="e" * 700,
    )
    async with state["sessions"]() as db:
        await audit.record(db, ctx, "a" * 100, target="t" * 1000, outcome="o" * 40)
        await db.commit()
        row = (
            await db.execute(select(AuditEvent).where(AuditEvent.request_id == "r" * 128))
        ).scalar_one()
    assert (row.action, row.target, row.outcome) == ("a" * 64, "t" * 255, "o" * 16)
    assert (row.actor_email, row.client_ip, row.user_agent) == ("e" * 320, "c" * 64, "u" * 512)


async def test_role_name_in_path_is_bounded(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    user = await register(client)
    await grant_roles(state, user["email"], ["admin"])
    headers = bearer((await login(client, user["email"]))["access_token"])
    for name in ("a%00b", "r" * 300, "%F0%9F%98%80"):
        response = await client.put(
            f"{API}/admin/roles/{name}", json={"permissions": []}, headers=headers
        )
        assert response.status_code in (404, 422), (name, response.text)
        assert response.json()["success"] is False
    # A name within bounds still works (a role of this test's own: seeded roles are shared).
    own = f"r{uuid.uuid4().hex[:8]}"
    assert_ok(await client.post(f"{API}/admin/roles", json={"name": own}, headers=headers), 201)
    narrowed = {"permissions": ["dashboard:read"]}
    assert_ok(await client.put(f"{API}/admin/roles/{own}", json=narrowed, headers=headers))


async def test_role_description_is_bounded_text(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> None:
    user = await register(client)
    await grant_roles(state, user["email"], ["admin"])
    headers = bearer((await login(client, user["email"]))["access_token"])
    json_headers = {**headers, "Content-Type": "application/json"}
    own = f"r{uuid.uuid4().hex[:8]}"  # edited below; seeded roles are shared by every test
    assert_ok(await client.post(f"{API}/admin/roles", json={"name": own}, headers=headers), 201)
    # As JSON text: a lone surrogate cannot be encoded by the client, only escaped.
    for description in (r"a\u0000b", "d" * 256, r"\ud800", r"bell\u0007"):
        name = f"r{uuid.uuid4().hex[:8]}"
        created = await client.post(
            f"{API}/admin/roles",
            content=f'{{"name": "{name}", "description": "{description}"}}',
            headers=json_headers,
        )
        assert_error(created, 422, "VALIDATION_ERROR")
        updated = await client.put(
            f"{API}/admin/roles/{own}",
            content=f'{{"permissions": ["dashboard:read"], "description": "{description}"}}',
            headers=json_headers,
        )
        assert_error(updated, 422, "VALIDATION_ERROR")
    kept = "Line one\nline two\twith a tab, ünïcödé ✓"
    created = await client.post(
        f"{API}/admin/roles",
        json={"name": f"d{uuid.uuid4().hex[:8]}", "description": kept},
        headers=headers,
    )
    assert assert_ok(created, 201)["description"] == kept
