"""`/docs` and `/redoc` in Chromium with every host but Studio's unreachable: the pages render
from Studio's own assets under its CSP, and Swagger UI authorises through the password flow and
executes `/auth/me` and `/auth/refresh`."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.browser.conftest import screenshot
from tests.support import serve_studio

pytestmark = pytest.mark.browser

PASSWORD = "docs-browser-password"
TIMEOUT_MS = 30_000
# Collects what the page's CSP refused; installed before any page script runs.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});
"""


@dataclass
class DocsStudio:
    url: str
    email: str
    password: str = PASSWORD


@dataclass
class Offline:
    """Every request the browser made; those for another host were aborted and listed."""

    origin: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.origin + "/")]


@pytest.fixture
async def docs_studio(make_settings: Callable[..., Settings]) -> AsyncIterator[DocsStudio]:
    """A dev Studio (docs on) on real PostgreSQL and Redis, with one registered user."""
    settings = make_settings()
    async with serve_studio(create_app(settings), settings) as url:
        email = f"docs-{uuid.uuid4().hex[:10]}@example.com"
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert response.status_code == 201, response.text
        yield DocsStudio(url=url, email=email)


@pytest.fixture
async def offline(context: Any, docs_studio: DocsStudio) -> Offline:
    """Cut the browser off from every host but Studio's (aborted in the browser itself)."""
    netloc = urlsplit(docs_studio.url).netloc
    network = Offline(origin=docs_studio.url)

    async def only_studio(route: Any) -> None:
        url = route.request.url
        network.requests.append(url)
        if urlsplit(url).netloc == netloc:
            await route.continue_()
        else:
            network.blocked.append(url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_studio)
    await context.add_init_script(CSP_PROBE)
    context.set_default_timeout(TIMEOUT_MS)
    return network


async def open_page(context: Any, url: str) -> Any:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors
    response = await page.goto(url)
    assert response.status == 200
    return page


def operation(page: Any, method: str, path: str) -> Any:
    """Swagger UI's block of one operation."""
    return page.locator(f".opblock-{method}", has=page.locator(f'[data-path="{path}"]'))


def auth_section(page: Any, scheme: str) -> Any:
    """The Authorize dialog's form of one security scheme (its heading starts with the name)."""
    return page.locator(".modal-ux .auth-container").filter(
        has=page.locator("h4", has_text=f"{scheme} (")
    )


async def execute(page: Any, method: str, path: str) -> tuple[Any, dict[str, Any], str]:
    """Open an operation, press Execute; the answer on the wire and the one the page shows."""
    block = operation(page, method, path)
    await block.locator(".opblock-summary").first.click()
    async with page.expect_response(lambda r: urlsplit(r.url).path == path) as answer:
        await block.locator("button.execute").click()
    response = await answer.value
    shown = block.locator(".live-responses-table .response")
    await shown.locator(".response-col_status").first.wait_for()
    status = (await shown.locator(".response-col_status").first.inner_text()).strip()
    body_text = await shown.locator(".response-col_description pre").first.inner_text()
    assert status == str(response.status), (status, response.status)
    return response, json.loads(body_text), status


async def test_swagger_ui_authorises_and_executes_offline(
    context: Any, docs_studio: DocsStudio, offline: Offline
) -> None:
    page = await open_page(context, f"{docs_studio.url}/docs")
    me_path, refresh_path = "/api/v1/auth/me", "/api/v1/auth/refresh"
    await operation(page, "get", me_path).wait_for()
    assert await page.locator(".opblock").count() > 20  # the whole schema rendered

    # The password flow: username and password only, no client fields.
    await page.locator(".scheme-container button.authorize").click()
    bearer = auth_section(page, "Bearer")
    await bearer.locator("#oauth_username").fill(docs_studio.email)
    await bearer.locator("#oauth_password").fill(docs_studio.password)
    for hidden in ("#client_id_password", "#client_secret_password", "#password_type"):
        assert await bearer.locator(hidden).count() == 1
        assert not await bearer.locator(hidden).is_visible(), hidden
    async with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/token")) as login:
        await bearer.locator("button.authorize").click()
    token_response = await login.value
    assert token_response.status == 200
    tokens = await token_response.json()
    await bearer.locator("button", has_text="Logout").wait_for()

    # The refresh token of that login goes into its own scheme.
    refresh = auth_section(page, "RefreshToken")
    await refresh.locator("input").first.fill(tokens["refresh_token"])
    await refresh.locator("button.authorize").click()
    await refresh.locator("button", has_text="Logout").wait_for()
    await page.locator(".modal-ux button.btn-done").first.click()

    response, shown, status = await execute(page, "get", me_path)
    assert status == "200"
    assert response.request.headers["authorization"] == f"Bearer {tokens['access_token']}"
    assert shown["success"] is True and shown["error"] is None
    assert shown["result"]["email"] == docs_studio.email

    response, shown, status = await execute(page, "post", refresh_path)
    assert status == "200"
    assert response.request.headers["authorization"] == f"Bearer {tokens['refresh_token']}"
    assert set(shown) == {"success", "message", "error", "result"} and shown["success"] is True
    assert shown["result"]["refresh_token"] != tokens["refresh_token"]  # rotated
    await screenshot(page, "docs-swagger-offline")

    assert await page.evaluate("window.__cspViolations") == []
    assert not page.errors, page.errors
    assert offline.foreign() == [] and offline.blocked == []
    # The cut is real: a page that does reach for another host gets nothing.
    probe = await context.new_page()
    outside = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
    with pytest.raises(Exception, match="ERR_INTERNET_DISCONNECTED"):
        await probe.goto(outside)
    assert offline.blocked == [outside]


async def test_redoc_renders_and_searches_offline(
    context: Any, docs_studio: DocsStudio, offline: Offline
) -> None:
    page = await open_page(context, f"{docs_studio.url}/redoc")
    operations = page.locator('[data-section-id^="operation/"]')
    await operations.first.wait_for()
    assert await operations.count() > 20  # the whole schema rendered
    # Search runs in ReDoc's worker (a blob: URL the docs CSP allows for /redoc only).
    await page.get_by_placeholder("Search...").fill("refresh")
    await page.locator('[data-role="search:results"] li').first.wait_for()
    await screenshot(page, "docs-redoc-offline")

    # ReDoc 2 always draws Redocly's logo from its CDN: the CSP refuses it (the image hides
    # itself on error), and nothing else.
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert await page.evaluate("window.__cspViolations") == [f"img-src {logo}"]
    assert [error for error in page.errors if logo not in error] == []
    assert offline.foreign() == [] and offline.blocked == []  # refused before the network
    assert any(url.endswith("/openapi.json") for url in offline.requests)
