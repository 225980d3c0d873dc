"""Refusals at the upgrade: an HTTP answer in the envelope, never an accepted socket.

ASGI's WebSocket Denial Response extension (`websocket.http.response`) lets the app answer the
upgrade request with any status and body; uvicorn offers it. A server without it gets a plain
close before accept, which it answers with 403.
"""

from __future__ import annotations

from starlette.types import Scope, Send

from app.core.errors import StudioError
from app.core.render import RenderedError, render_error

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
