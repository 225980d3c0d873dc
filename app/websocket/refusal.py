"""Refusals at the upgrade: an HTTP answer in the envelope, never an accepted socket.

ASGI's WebSocket Denial Response extension (`websocket.http.response`) lets the app answer the
upgrade request with any status and body; uvicorn offers it. A server without it gets a plain
close before accept, which it answers with 403.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import NotFound, StudioError
from app.core.render import RenderedError, render_error
from app.core.request_id import accept_or_new

DENIAL = "websocket.http.response"


async def refuse(
    scope: Scope, send: Send, error: StudioError | RenderedError, request_id: str
) -> int:
    """Answer the upgrade with `error`; returns the HTTP status sent."""
    rendered = render_error(error) if isinstance(error, StudioError) else error
    if DENIAL not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return 403
    headers = [*rendered.headers, (b"x-request-id", request_id.encode("ascii"))]
    await send(
        {"type": "websocket.http.response.start", "status": rendered.status, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": rendered.body})
    return rendered.status


def unrouted(default: ASGIApp) -> ASGIApp:
    """The router's answer for a path no route claims: for an upgrade, Studio's 404 envelope
    (Starlette's own is a bare close, which servers answer with a 403); HTTP as before."""

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await default(scope, receive, send)
            return
        if (await receive())["type"] != "websocket.connect":
            return
        state = scope.get("state") or {}
        request_id: str = state.get("request_id") or accept_or_new(None)
        await refuse(scope, send, NotFound(), request_id)

    return answer
