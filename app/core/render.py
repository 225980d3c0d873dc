"""The one error renderer: every error envelope Studio sends is built by `render`.

Exception handlers answer with `ErrorResponse`, pure ASGI code (edge limits, the proxy, the
last-resort 500) with `send_error`; both take what `render` made, so an error reads the same
byte for byte whichever layer refused the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.core import envelope
from app.core.errors import StudioError
from app.core.logging import get_logger

log = get_logger("studio.errors")

_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


@dataclass(frozen=True, slots=True)
class RenderedError:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def render(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> RenderedError:
    """The error envelope with its status and headers (content type and length first)."""
    body = envelope.dumps(envelope.failure(code, message, details))
    raw = [_JSON, (b"content-length", str(len(body)).encode())]
    if headers:
        raw.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    return RenderedError(status, raw, body)


def render_error(error: StudioError) -> RenderedError:
    """`render` for a `StudioError`; 5xx errors are logged (never their details)."""
    if error.status_code >= 500:
        log.warning("request failed", code=error.code, reason=error.detail_message)
    return render(error.status_code, error.code, error.detail_message, error.details, error.headers)


async def send_error(
    scope: Scope, send: Send, error: StudioError | RenderedError, *, close: bool = False
) -> None:
    """Send an error from ASGI code; `close` asks the client to drop the connection."""
    rendered = render_error(error) if isinstance(error, StudioError) else error
    headers = [*rendered.headers, _CLOSE] if close else rendered.headers
    scope[envelope.FINAL_BODY] = True
    await send({"type": "http.response.start", "status": rendered.status, "headers": headers})
    await send({"type": "http.response.body", "body": rendered.body})


class ErrorResponse(Response):
    """A rendered error as a Starlette response, for exception handlers."""

    media_type = "application/json"

    def __init__(self, error: StudioError | RenderedError) -> None:
        rendered = render_error(error) if isinstance(error, StudioError) else error
        super().__init__(status_code=rendered.status)
        self.body = rendered.body
        self.raw_headers = list(rendered.headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[envelope.FINAL_BODY] = True
        await super().__call__(scope, receive, send)
