"""A real browser against a live Studio: both login modes from an allowed origin, SSE from a
proxied Zen route, CORS from an origin that is not allowed, and a forged form post."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.browser.conftest import FrontDoor, screenshot

pytestmark = pytest.mark.browser

TIMEOUT = 30


async def open_page(context: Any, url: str) -> Any:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    await page.wait_for_function("typeof cookieFlow === 'function'")
    page.errors = errors  # uncaught page errors, for failure messages
    return page


async def run(page: Any, script: str, *args: Any) -> Any:
    return await asyncio.wait_for(page.evaluate(script, list(args)), TIMEOUT)


async def test_bearer_mode_from_an_allowed_origin(context: Any, front_door: FrontDoor) -> None:
    page = await open_page(context, front_door.page_url(front_door.app))
    wrong = await run(
        page,
        "([email]) => call('/auth/login', {method: 'POST', body: {email, password: 'nope'}})",
        front_door.email,
    )
    # An error envelope reaches the page too (CORS exposes it to the allowed origin).
    assert (wrong["status"], wrong["code"]) == (401, "INVALID_CREDENTIALS")

    result = await run(
        page,
        "([email, password]) => bearerFlow(email, password)",
        front_door.email,
        front_door.password,
    )
    await screenshot(page, "bearer-mode")
    assert result["login"] == 200 and result["tokenType"] == "bearer", result
    assert result["me"] == front_door.email
    sse = result["sse"]
    assert sse["status"] == 200 and sse["type"].startswith("text/event-stream")
    assert [event["i"] for event in sse["events"]] == [0, 1, 2]
    assert result["logout"] == 200
    assert (result["after"], result["afterCode"]) == (401, "SESSION_REVOKED")
    assert not page.errors


async def test_cookie_mode_from_an_allowed_origin(context: Any, front_door: FrontDoor) -> None:
    page = await open_page(context, front_door.page_url(front_door.app))
    result = await run(
        page,
        "([email, password]) => cookieFlow(email, password)",
        front_door.email,
        front_door.password,
    )
    await screenshot(page, "cookie-mode")

    login = result["login"]
    assert login["status"] == 200 and login["mode"] == "cookie", result
    assert not login["hasTokens"]  # no token ever reaches the page
    assert not login["sessionCookieReadable"]  # HttpOnly
    assert result["me"] == front_door.email
    assert [event["i"] for event in result["events"]] == [0, 1, 2]
    assert result["noCsrf"] == [403, "CSRF_FAILED"]
    assert result["chat"] == [200, "/chat"]
    assert result["logout"] == 200
    assert result["after"] == [401, "UNAUTHORIZED"]  # the cookies are gone from the browser
    assert not any(c["name"].endswith("studio_session") for c in await context.cookies())
    # The downstream saw the user, never the browser's cookies or Studio's session.
    chat = front_door.zen.calls("/chat")
    assert len(chat) == 1
    headers = {k.lower(): v for k, v in chat[0].headers.items()}
    assert headers["x-user-email"] == front_door.email
    assert "cookie" not in headers and "authorization" in headers  # Studio's Basic Auth
    assert not page.errors


async def test_an_origin_not_allowed_is_blocked_by_the_browser(
    context: Any, front_door: FrontDoor
) -> None:
    # Signed in from the allowed page first, so the browser holds a session cookie.
    app_page = await open_page(context, front_door.page_url(front_door.app))
    await run(
        app_page,
        "([email, password]) => cookieLogin(email, password)",
        front_door.email,
        front_door.password,
    )

    page = await open_page(context, front_door.page_url(front_door.evil))
    result = await run(
        page,
        "([email, password]) => blocked(email, password)",
        front_door.email,
        front_door.password,
    )
    await screenshot(page, "origin-not-allowed")
    assert result == {"me": "blocked", "login": "blocked"}


@pytest.mark.parametrize(
    ("host", "status", "code"),
    [
        # Same site, other origin: SameSite=Lax sends the cookie, the CSRF check refuses.
        ("127.0.0.1", 403, "CSRF_FAILED"),
        # Another site: SameSite=Lax withholds the cookie on a cross-site POST.
        ("localhost", 401, "UNAUTHORIZED"),
    ],
)
async def test_a_forged_form_post_is_refused(
    context: Any, front_door: FrontDoor, host: str, status: int, code: str
) -> None:
    app_page = await open_page(context, front_door.page_url(front_door.app))
    login = await run(
        app_page,
        "([email, password]) => cookieLogin(email, password)",
        front_door.email,
        front_door.password,
    )
    assert login["status"] == 200

    evil = front_door.evil.replace("127.0.0.1", host)
    page = await open_page(context, front_door.page_url(evil))
    async with page.expect_navigation() as navigation:
        await page.evaluate("forgeFormPost('/auth/logout')")
    response = await navigation.value
    body = json.loads(await page.inner_text("body"))
    await screenshot(page, f"forged-form-post-{host.replace('.', '-')}")
    assert response.status == status
    assert body["success"] is False and body["error"]["code"] == code, body

    # The session survived: the allowed page is still signed in.
    assert await run(app_page, "() => me()") == 200
