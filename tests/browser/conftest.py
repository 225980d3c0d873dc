"""Headless Chromium (Debian's, driven by Playwright; never a downloaded browser), a static page
server for the front-end origins, and a live Studio in front of a fake Zen."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from app.core.config import Settings
from app.main import create_app
from tests.conftest import ROOT
from tests.fakes.server import FakeService, make_service
from tests.support import live_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts" / "browser"
PAGE = (Path(__file__).parent / "page.html").read_bytes()
ZEN_USER, ZEN_PASSWORD = "svc", "zen-browser-password"
PASSWORD = "browser-test-password"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One Chromium for the run. Missing: skipped, or a failure with STUDIO_REQUIRE_BROWSER=1."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("STUDIO_REQUIRE_BROWSER") == "1":
            pytest.fail(f"STUDIO_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)  # never in CI: it installs Chromium, like STUDIO_REQUIRE_SERVICES
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


def static_page(body: bytes) -> Callable[[Scope, Receive, Send], Any]:
    """A tiny ASGI app that serves one HTML page at `/`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        found = scope["path"] == "/"
        await send(
            {
                "type": "http.response.start",
                "status": 200 if found else 404,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body if found else b"not found"})

    return app


@dataclass
class FrontDoor:
    studio: str  # Studio's origin
    app: str  # a front-end origin in CORS_ALLOW_ORIGINS
    evil: str  # a front-end origin that is not
    zen: FakeService
    email: str
    password: str = PASSWORD

    def page_url(self, origin: str) -> str:
        return f"{origin}/?studio={self.studio}"


async def open_front_door(
    stack: AsyncExitStack,
    monkeypatch: pytest.MonkeyPatch,
    make_settings: Callable[..., Settings],
    zen_url: str,
    zen_user: str,
    zen_password: str,
) -> tuple[str, str, str, str]:
    """On `stack`: Studio (uvicorn) in front of Zen at `zen_url`, the page on an allowed origin
    and on a foreign one, and a registered user; returns (studio, app origin, evil, email)."""
    # The pages first (each on a port of its own binding): Studio's CORS names the app's origin.
    app_origin = await stack.enter_async_context(live_server(static_page(PAGE)))
    evil = await stack.enter_async_context(live_server(static_page(PAGE)))
    monkeypatch.setenv("ZEN_URL", zen_url)
    monkeypatch.setenv("ZEN_SERVICE_USER", zen_user)
    monkeypatch.setenv("ZEN_SERVICE_PASSWORD", zen_password)
    settings = make_settings(cors_allow_origins=[app_origin])
    studio = await stack.enter_async_context(live_server(create_app(settings)))
    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=studio) as http:
        response = await http.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
    return studio, app_origin, evil, email


@pytest.fixture
async def front_door(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FrontDoor]:
    """Studio (uvicorn) + fake Zen + the allowed and the foreign page origins, and a user."""
    zen = make_service("zen", ZEN_USER, ZEN_PASSWORD)
    async with AsyncExitStack() as stack:
        zen_url = await stack.enter_async_context(live_server(zen))
        studio, app_origin, evil, email = await open_front_door(
            stack, monkeypatch, make_settings, zen_url, ZEN_USER, ZEN_PASSWORD
        )
        yield FrontDoor(studio=studio, app=app_origin, evil=evil, zen=zen, email=email)


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser profile (cookie jar) per test."""
    ctx = await browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        yield ctx
    finally:
        await ctx.close()


async def screenshot(page: Any, name: str) -> Path:
    """Keep what the page showed as a CI artifact (`artifacts/browser/<name>.png`)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
