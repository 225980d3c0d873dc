"""The ASGI server's WebSocket protocol for `studio serve`: shutdown ends sockets with 1001.

uvicorn, told to stop, ends every open WebSocket at once with 1012 and a half-closed relay
behind it. Here the relay's hub ends them instead: each client gets 1001 (going away) with a
reason, its service the same, and the per-user slot is given back; uvicorn then waits for the
closed connections as it waits for HTTP requests to drain (`timeout_graceful_shutdown`).
Without the relay in the app's state (or before the handshake) uvicorn's own shutdown applies.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from app.websocket.front import STATE_KEY, Front

# `studio serve` passes this to uvicorn's `ws` option.
WS_PROTOCOL = "app.websocket.server:StudioWebSocketProtocol"


class QueryRedaction(logging.Filter):
    """Drops the query string from uvicorn's `"WebSocket <path>"` lines: a client may put a
    token there (refused, but it must not reach the log either)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and '"WebSocket %s"' in record.msg:
            args = record.args
            if isinstance(args, tuple) and len(args) >= 2 and isinstance(args[1], str):
                record.args = (args[0], args[1].split("?", 1)[0], *args[2:])
        return True


_REDACTION = QueryRedaction()


class StudioWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with the relay's shutdown and no query strings
    in its log lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if _REDACTION not in self.logger.filters:
            self.logger.addFilter(_REDACTION)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A refusal (a denial response) ends the handshake, but uvicorn does not count it as
            # ended and would log "returned without completing handshake" for every refusal.
            self.handshake_complete = True

    def shutdown(self) -> None:
        front: Front | None = self.app_state.get(STATE_KEY)
        if front is None or not self.handshake_complete or self.close_sent:
            super().shutdown()
            return
        front.hub.going_away()  # the relay closes this connection (and every other)
