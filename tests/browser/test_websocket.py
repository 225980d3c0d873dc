"""Chromium in cookie mode opens a WebSocket through Studio from an allowed origin, receives
what the service pushes, and sees the socket closed (4401) when it logs out; a page of another
origin cannot open one with the user's cookie."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from app.core.config import Settings
from tests.browser.conftest import PASSWORD, open_front_door, screenshot
from tests.websocket.support import Downstream, serve_downstream

pytestmark = pytest.mark.browser

TIMEOUT = 30

# Opens a socket in cookie mode, gathers the pushed messages, logs out once three arrived,
# and resolves with what the page saw, close code included.
SOCKET_FLOW = """
async ([path]) => {
  const url = API.replace(/^http/, "ws") + path;
  const seen = { messages: [], opened: false };
  let loggedOut = null;
  const closed = new Promise((resolve) => {
    const socket = new WebSocket(url, ["chat.v1"]);
    socket.onopen = () => { seen.opened = true; seen.protocol = socket.protocol; };
    socket.onmessage = (event) => {
      seen.messages.push(event.data);
      if (seen.messages.length === 3) {
        loggedOut = call("/auth/logout", { method: "POST", csrf: window.csrfToken });
      }
    };
    socket.onclose = (event) => resolve([event.code, event.reason]);
  });
  [seen.code, seen.reason] = await closed;
  seen.logout = loggedOut === null ? null : (await loggedOut).status;
  return seen;
}
"""


@pytest.fixture
async def studio_and_pages(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, str, str, str, Downstream]]:
    async with AsyncExitStack() as stack:
        downstream = await stack.enter_async_context(serve_downstream())
        zen_url = downstream.url.replace("ws://", "http://", 1)
        studio, app_origin, evil, email = await open_front_door(
            stack, monkeypatch, make_settings, zen_url, "svc", "zen-socket-password"
        )
        yield studio, app_origin, evil, email, downstream


async def _page(context: Any, origin: str, studio: str) -> Any:
    page = await context.new_page()
    await page.goto(f"{origin}/?studio={studio}")
    await page.wait_for_function("typeof cookieLogin === 'function'")
    return page


async def test_cookie_socket_gets_pushes_and_closes_on_logout(
    context: Any, studio_and_pages: tuple[str, str, str, str, Downstream]
) -> None:
    studio, app_origin, evil_origin, email, downstream = studio_and_pages
    page = await _page(context, app_origin, studio)
    login = await asyncio.wait_for(
        page.evaluate("([e, p]) => cookieLogin(e, p)", [email, PASSWORD]), TIMEOUT
    )
    assert login["status"] == 200 and not login["hasTokens"]

    # Another site's page, same browser, same cookies: refused before the service is called.
    evil = await _page(context, evil_origin, studio)
    refused = await asyncio.wait_for(
        evil.evaluate(
            """async () => await new Promise((resolve) => {
                 const s = new WebSocket(API.replace(/^http/, "ws") + "/zen/live/push");
                 s.onopen = () => resolve("open");
                 s.onclose = (e) => resolve(e.code);
               })"""
        ),
        TIMEOUT,
    )
    assert refused == 1006  # the browser saw the upgrade answered with 403
    assert downstream.paths == []

    seen = await asyncio.wait_for(page.evaluate(SOCKET_FLOW, ["/zen/live/push"]), TIMEOUT)
    await screenshot(page, "websocket-cookie-mode")
    assert seen["opened"] and seen["protocol"] == "chat.v1"
    assert seen["messages"] == ["push 0", "push 1", "push 2"]
    assert seen["logout"] == 200
    assert (seen["code"], seen["reason"]) == (4401, "session ended")
    headers = {k.lower(): v for k, v in downstream.headers[0].items()}
    assert "cookie" not in headers and headers["x-user-email"] == email
