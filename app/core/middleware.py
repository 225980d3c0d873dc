"""Pure ASGI middleware: request context, access log, last-resort errors, envelope safety net."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import envelope
from app.core import request_id as request_ids
from app.core.config import IPNetwork
from app.core.errors import InternalError, code_for_status
from app.core.logging import get_logger
from app.core.network import (
    PUBLIC_ORIGIN,
    client_ip,
    configured_origin,
    forwarded_origin,
    peer_is_trusted,
)
from app.core.render import render, send_error
from app.core.request_id import accept_or_new

log = get_logger("studio.access")
error_log = get_logger("studio.error")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class RequestContextMiddleware:
    """Outermost layer: X-Request-ID in and out, one access line, 500 envelope on a crash.

    It also settles who the client is and how it reached Studio (`client_ip`, the public
    origin): PUBLIC_BASE_URL when set, else what a trusted proxy stated, else unknown.
    """

    def __init__(
        self,
        app: ASGIApp,
        trusted_proxies: Sequence[IPNetwork] = (),
        public_origin: tuple[str, str] | None = None,
    ) -> None:
        self.app = app
        self.trusted = tuple(trusted_proxies)
        self.public_origin = configured_origin(public_origin)
        # Built after logging is configured; a disabled access line then costs nothing at all.
        self.access_log: bool = log.is_enabled_for(logging.INFO)

    def _settle(self, scope: Scope) -> dict[str, Any]:
        """The request id, the client's address and the public origin, in the scope's state."""
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = accept_or_new(_header(scope, b"x-request-id"))
        state["client_ip"] = client_ip(scope, self.trusted)
        by_proxy = state["forwarded_by_proxy"] = peer_is_trusted(scope, self.trusted)
        origin = self.public_origin
        if origin is None and by_proxy:
            origin = forwarded_origin(scope)
        state[PUBLIC_ORIGIN] = origin
        return state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":  # an upgrade: the same client facts, its own answers
                self._settle(scope)
            await self.app(scope, receive, send)
            return

        state = self._settle(scope)
        request_id: str = state["request_id"]
        token = request_ids.CURRENT.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
                headers.append((b"x-request-id", raw_id))
                extra: dict[str, str] | None = state.get("response_headers")
                if extra:  # e.g. RateLimit-* from a dependency, kept on errors too
                    present = {k.lower() for k, _ in headers}
                    for name, value in extra.items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error", method=scope["method"], path=scope["path"])
            if not response_started:
                await send_error(scope, send_with_id, InternalError())
        finally:
            if self.access_log:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    user_id=state.get("user_id"),
                    client=state["client_ip"],
                )
            request_ids.CURRENT.reset(token)


class EnvelopeMiddleware:
    """Wrap any JSON body that no Studio response class produced (framework errors and the like).

    Responses rendered by `EnvelopeResponse`/`RawJSONResponse` mark the scope and pass
    untouched; streaming and non-JSON bodies are never buffered.
    """

    def __init__(self, app: ASGIApp, raw_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.raw_paths = frozenset(raw_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.raw_paths:
            await self.app(scope, receive, send)
            return

        start: Message | None = None
        chunks: list[bytes] = []

        async def send_wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if scope.get(envelope.FINAL_BODY) or not _is_json(message):
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _wrapped_body(b"".join(chunks), start["status"])
            headers = MutableHeaders(scope=start)
            headers["content-length"] = str(len(body))
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_wrapped)


def _is_json(message: Message) -> bool:
    for key, value in message.get("headers", ()):
        if key == b"content-type":
            media = bytes(value).split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _wrapped_body(raw: bytes, status: int) -> bytes:
    try:
        decoded = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw
    if status < 400 or envelope.is_envelope(decoded):
        return envelope.dumps(envelope.wrap(decoded, status))
    return render(status, code_for_status(status), envelope.reason(status), decoded).body
