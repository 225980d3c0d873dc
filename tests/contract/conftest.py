"""A live Studio (uvicorn, real PostgreSQL and Redis) in front of a fake Zen, and its schema as
a front-end team fetches it: `GET /openapi.json` of the running server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.fakes.server import FakeService, make_service
from tests.support import live_server, serve_studio

ZEN_USER, ZEN_PASSWORD = "svc", "zen-contract-password"


@dataclass(frozen=True)
class LiveStudio:
    url: str  # Studio's origin, e.g. http://127.0.0.1:41234
    schema: Path  # the OpenAPI document it served, saved for the generators
    zen: FakeService


@pytest.fixture(scope="session")
async def zen() -> AsyncIterator[tuple[FakeService, str]]:
    """The fake Zen (echo, `/sse`), checking Studio's Basic Auth; yields it and its URL."""
    service = make_service("zen", ZEN_USER, ZEN_PASSWORD)
    async with live_server(service) as url:
        yield service, url


@pytest.fixture
async def studio(
    make_settings: Callable[..., Settings],
    zen: tuple[FakeService, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[LiveStudio]:
    """Studio as `studio serve` runs it (the committed registry with the local overlay), its
    Zen pointed at the fake; the schema is fetched from the live server, as a client would."""
    service, zen_url = zen
    service.reset()
    monkeypatch.setenv("ZEN_URL", zen_url)
    monkeypatch.setenv("ZEN_SERVICE_USER", ZEN_USER)
    monkeypatch.setenv("ZEN_SERVICE_PASSWORD", ZEN_PASSWORD)
    settings = make_settings()
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve_studio(create_app(settings), settings))
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/openapi.json")
        assert response.status_code == 200, response.text
        schema = tmp_path / "openapi.json"
        schema.write_bytes(response.content)
        yield LiveStudio(url=url, schema=schema, zen=service)
