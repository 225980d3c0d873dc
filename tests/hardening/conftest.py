"""Studio in front of the fake downstreams, with dependencies the test may break."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from loguru import logger

from app.core.config import Settings
from app.main import create_app
from tests.conftest import ROOT
from tests.gateway.conftest import NAMES, PASSWORD, USER, downstreams, fake_services
from tests.support import StateApp

__all__ = ["downstreams", "fake_services"]
API = "/api/v1"
ACCOUNT_PASSWORD = "hardening-password-1"


def overlay(tmp_path: Path, **services: dict[str, Any]) -> Path:
    """The local overlay with per-service changes deep-merged in (e.g. short zen timeouts)."""
    data = yaml.safe_load((ROOT / "config" / "local.yml").read_text())
    for name, extra in services.items():
        data["services"].setdefault(name, {}).update(extra)
    path = tmp_path / f"overlay-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def studio(
    make_settings: Callable[..., Settings],
    downstreams: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Any]:
    """`async with studio(urls={"zen": proxy.url}, **settings) as (client, state)`."""

    @contextlib.asynccontextmanager
    async def run(
        urls: dict[str, str] | None = None, peer: str = "127.0.0.1", **overrides: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
        for name in NAMES:
            url = (urls or {}).get(name, downstreams[name])
            monkeypatch.setenv(f"{name.upper()}_URL", url)
            monkeypatch.setenv(f"{name.upper()}_SERVICE_USER", USER)
            monkeypatch.setenv(f"{name.upper()}_SERVICE_PASSWORD", PASSWORD)
        app = create_app(make_settings(**overrides))
        async with app.router.lifespan_context(app) as lifespan_state:
            state = cast(dict[str, Any], lifespan_state)
            transport = httpx.ASGITransport(app=StateApp(app, state), client=(peer, 4242))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://studio", timeout=30
            ) as client:
                yield client, state

    return run


async def login(client: httpx.AsyncClient, email: str, password: str = ACCOUNT_PASSWORD) -> Any:
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password})


async def user(
    client: httpx.AsyncClient, state: dict[str, Any], *roles: str
) -> tuple[str, dict[str, str]]:
    """A new account with `roles` (default viewer); returns (email, bearer headers)."""
    from sqlalchemy import select

    from app.auth.models import User
    from app.rbac.models import Role

    email = f"hard-{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post(
        f"{API}/auth/register", json={"email": email, "password": ACCOUNT_PASSWORD}
    )
    assert r.status_code == 201, r.text
    if roles:
        async with state["sessions"]() as db:
            row = (await db.execute(select(User).where(User.email == email))).scalar_one()
            row.roles = list((await db.execute(select(Role).where(Role.name.in_(roles)))).scalars())
            await db.commit()
    r = await login(client, email)
    assert r.status_code == 200, r.text
    return email, {"Authorization": f"Bearer {r.json()['result']['access_token']}"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an error envelope with this status and code."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"success", "message", "error", "result"}, body
    assert body["success"] is False and body["result"] is None, body
    assert body["error"]["code"] == code, body
    assert response.headers.get("x-request-id"), response.headers
    return dict(body)


class LogCapture:
    """Every loguru record written while active, serialised whole."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._id: int | None = None

    def __enter__(self) -> LogCapture:
        self._id = logger.add(self.lines.append, level=0, serialize=True, diagnose=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._id is not None:
            logger.remove(self._id)

    @property
    def text(self) -> str:
        return "\n".join(str(line) for line in self.lines)
