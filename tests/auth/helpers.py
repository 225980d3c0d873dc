"""Helpers shared by the identity, rate limit and audit tests."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from jose import jwt
from sqlalchemy import select

from app.auth.models import User
from app.core.config import Settings
from app.main import create_app
from app.rbac.models import Role
from tests.conftest import TEST_SECRET
from tests.support import StateApp

API = "/api/v1"
AUTH = f"{API}/auth"
PASSWORD = "correct horse battery staple"
ENVELOPE_KEYS = {"success", "message", "error", "result"}


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """A Studio app for `settings` with its lifespan running: (client, lifespan state)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as raw:
        state: dict[str, Any] = dict(raw or {})
        transport = httpx.ASGITransport(app=StateApp(app, state), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, state


def new_email(tag: str = "user") -> str:
    """A unique address for this test."""
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_ok(response: httpx.Response, status: int = 200) -> Any:
    """The `result` of a success envelope with `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ENVELOPE_KEYS, body
    assert body["success"] is True
    assert body["error"] is None
    return body["result"]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An error envelope with the real status and `code`; returns the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ENVELOPE_KEYS, body
    assert body["success"] is False
    assert body["result"] is None
    assert body["error"]["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert response.headers.get("x-request-id")
    return body


async def register(
    client: httpx.AsyncClient,
    email: str | None = None,
    password: str = PASSWORD,
    **extra: Any,
) -> dict[str, Any]:
    """Create an account through the API; returns `result.user`."""
    payload = {"email": email or new_email(), "password": password, **extra}
    response = await client.post(f"{AUTH}/register", json=payload)
    result = assert_ok(response, 201)
    user: dict[str, Any] = result["user"]
    return user


async def login(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Log in through the API; returns the token pair (`result`)."""
    response = await client.post(
        f"{AUTH}/login", json={"email": email, "password": password}, headers=headers
    )
    pair: dict[str, Any] = assert_ok(response)
    return pair


async def account(
    client: httpx.AsyncClient, password: str = PASSWORD, **headers: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh account and one logged-in session: (user, token pair)."""
    user = await register(client, password=password)
    return user, await login(client, user["email"], password, headers=headers or None)


async def load_user(state: dict[str, Any], email: str) -> User | None:
    """The stored row, read in a session of its own."""
    async with state["sessions"]() as db:
        result: User | None = (
            await db.execute(select(User).where(User.email == email))
        ).scalar_one_or_none()
        return result


async def update_user(state: dict[str, Any], email: str, **values: Any) -> None:
    """Change columns of a stored user directly in the database."""
    async with state["sessions"]() as db:
        user = (await db.execute(select(User).where(User.email == email))).scalar_one()
        for key, value in values.items():
            setattr(user, key, value)
        await db.commit()


async def grant_roles(state: dict[str, Any], email: str, roles: list[str]) -> None:
    """Give a stored user exactly these roles, directly in the database."""
    async with state["sessions"]() as db:
        user = (await db.execute(select(User).where(User.email == email))).scalar_one()
        user.roles = list((await db.execute(select(Role).where(Role.name.in_(roles)))).scalars())
        await db.commit()


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a token, unverified (to craft variants of a real one)."""
    claims: dict[str, Any] = jwt.get_unverified_claims(token)
    return claims


def sign(claims: dict[str, Any], secret: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return str(jwt.encode(claims, secret, algorithm=algorithm))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    """An `alg: none` token: header and payload, empty signature."""
    header = b64url(orjson.dumps({"alg": alg, "typ": "JWT"}))
    return f"{header}.{b64url(orjson.dumps(claims))}."


def fresh_claims(token: str, **changes: Any) -> dict[str, Any]:
    """The claims of a real token, re-timed to now, with `changes` (None deletes a claim)."""
    now = int(time.time())
    claims = {**claims_of(token), "iat": now, "nbf": now, "exp": now + 300}
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims
