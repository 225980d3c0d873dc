"""The whole app (real auth, PostgreSQL, Redis) in front of the four fake downstreams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.fakes.server import FakeService, make_service
from tests.support import StateApp, live_server, refusing_port

USER, PASSWORD = "svc", "svc-password"
NAMES = ("nexus", "zen", "agents", "ingestion")


@pytest.fixture(scope="session")
def fake_services() -> dict[str, FakeService]:
    """The four fakes, checking Basic Auth; they record what they receive."""
    return {name: make_service(name, USER, PASSWORD) for name in NAMES}


@pytest.fixture(scope="session")
async def downstreams(fake_services: dict[str, FakeService]) -> AsyncIterator[dict[str, str]]:
    """The fakes served on free ports: name -> base URL."""
    async with AsyncExitStack() as stack:
        urls = {
            name: await stack.enter_async_context(live_server(service))
            for name, service in fake_services.items()
        }
        yield urls


@pytest.fixture
def gateway(
    make_settings: Callable[..., Settings],
    downstreams: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Any]]:
    """`async with gateway(down=("ingestion",), **settings) as (client, state)`."""
    held = ExitStack()  # the ports of the services that are down, refusing until the test ends

    def build(down: tuple[str, ...] = (), tracer_provider: Any = None, **overrides: Any) -> Any:
        for name in NAMES:
            if name in down:
                url = f"http://127.0.0.1:{held.enter_context(refusing_port())}"
            else:
                url = downstreams[name]
            monkeypatch.setenv(f"{name.upper()}_URL", url)
            monkeypatch.setenv(f"{name.upper()}_SERVICE_USER", USER)
            monkeypatch.setenv(f"{name.upper()}_SERVICE_PASSWORD", PASSWORD)
        settings = make_settings(**overrides)
        return _Running(settings, tracer_provider)

    with held:
        yield build


class _Running:
    def __init__(self, settings: Settings, tracer_provider: Any = None) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider

    async def __aenter__(self) -> tuple[httpx.AsyncClient, dict[str, Any]]:
        self.app = create_app(self.settings, tracer_provider=self.tracer_provider)
        self.lifespan = self.app.router.lifespan_context(self.app)
        state = await self.lifespan.__aenter__()
        transport = httpx.ASGITransport(app=StateApp(self.app, state), client=("127.0.0.1", 4242))
        self.client = httpx.AsyncClient(transport=transport, base_url="http://studio")
        return self.client, state

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


async def account(client: httpx.AsyncClient, state: dict[str, Any], *roles: str) -> dict[str, str]:
    """Register, grant `roles` (replacing `viewer` when given), log in; returns auth headers."""
    from sqlalchemy import select

    from app.auth.models import User
    from app.rbac.models import Role

    email = f"gw-{uuid.uuid4().hex[:10]}@example.com"
    password = "gateway-password"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    if roles:
        async with state["sessions"]() as db:
            user = (await db.execute(select(User).where(User.email == email))).scalar_one()
            user.roles = list(
                (await db.execute(select(Role).where(Role.name.in_(roles)))).scalars()
            )
            await db.commit()
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return {"Authorization": f"Bearer {r.json()['result']['access_token']}"}


async def make_role(state: dict[str, Any], name: str, permissions: list[str]) -> None:
    """Create a role with these permissions (once)."""
    from sqlalchemy import select

    from app.rbac.models import Permission, Role

    async with state["sessions"]() as db:
        if (await db.execute(select(Role).where(Role.name == name))).scalar_one_or_none():
            return
        perms = []
        for p in permissions:
            found = (
                await db.execute(select(Permission).where(Permission.name == p))
            ).scalar_one_or_none()
            perms.append(found or Permission(name=p))
        db.add(Role(name=name, permissions=perms))
        await db.commit()
