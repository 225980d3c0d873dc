"""Accounts for admin tests: an administrator and ordinary users, logged in over the API."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.auth.models import User
from app.rbac.models import Role

PASSWORD = "correct horse battery"


@dataclass
class Account:
    id: str
    email: str
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Account:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    return Account(result["user"]["id"], email, result["access_token"], result["refresh_token"])


@pytest.fixture
def new_account(
    client: httpx.AsyncClient, state: dict[str, Any]
) -> Callable[..., Awaitable[Account]]:
    async def make(*roles: str) -> Account:
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        if roles:
            async with state["sessions"]() as db:
                user = (await db.execute(select(User).where(User.email == email))).scalar_one()
                user.roles = list(
                    (await db.execute(select(Role).where(Role.name.in_(roles)))).scalars()
                )
                await db.commit()
        return await login(client, email)

    return make


@pytest.fixture
async def admin(new_account: Callable[..., Awaitable[Account]]) -> Account:
    return await new_account("admin")
