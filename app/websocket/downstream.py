"""The connection to the service: breaker, credentials, Studio's headers, the handshake.

Every failure becomes an HTTP error before the client's upgrade is accepted: a refused or
failed connection 502, a timeout 504, an open breaker 503, and a handshake the service turned
down keeps the service's status with code DOWNSTREAM_ERROR. Only the service's own failures
(no connection, a timeout, a 5xx) count against its breaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from starlette.types import Scope

from app.core.errors import StudioError
from app.core.logging import get_logger
from app.core.render import RenderedError, render
from app.identity.principal import Principal
from app.proxy.breaker import CircuitBreaker
from app.proxy.errors import UpstreamTimeout, UpstreamUnavailable
from app.proxy.headers import RawHeaders, outbound, studio_headers

log = get_logger("studio.websocket")

# The client's handshake headers: aiohttp states its own, and the subprotocols travel apart.
HANDSHAKE = b"sec-websocket-"
Credentials = Callable[[], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class Target:
    """One service's WebSocket side, as the relay needs it."""

    service: str
    url: str  # ws(s)://host:port/base-path, without the tail
    host_header: bytes
    breaker: CircuitBreaker
    credentials: Credentials  # the Basic Auth header value, None for `auth: none`
    max_message_bytes: int
    idle_timeout: float  # seconds without a message either way before the socket closes
    connect_timeout: float
    ping_interval: float


class DownstreamRefused(Exception):
    """The service answered the handshake with an HTTP status; carries the rendered answer."""

    def __init__(self, rendered: RenderedError) -> None:
        super().__init__(rendered.status)
        self.rendered = rendered


def subprotocols(scope: Scope) -> list[str]:
    """The client's offered subprotocols, in its order."""
    offered: list[str] = scope.get("subprotocols") or []
    return [p for p in offered if p][:16]


def handshake_headers(scope: Scope, target: Target, principal: Principal) -> RawHeaders:
    """The client's headers as the HTTP proxy forwards them, less the handshake's own, plus
    Studio's (host, request id, forwarded-for, X-User-*)."""
    client = outbound(scope["headers"]).forward
    kept = [(n, v) for n, v in client if not n.startswith(HANDSHAKE)]
    return kept + studio_headers(scope, target.host_header, principal)


async def connect(
    session: aiohttp.ClientSession,
    target: Target,
    tail: str,
    query: bytes,
    headers: RawHeaders,
    protocols: list[str],
) -> aiohttp.ClientWebSocketResponse:
    """The open downstream socket, or a `StudioError` / `DownstreamRefused`."""
    probe = target.breaker.acquire()  # CircuitOpen: nothing is sent
    try:
        auth = await target.credentials()
        fields: CIMultiDict[str] = CIMultiDict(
            (n.decode("latin-1"), v.decode("latin-1")) for n, v in headers
        )
        if auth is not None:
            fields["Authorization"] = auth.decode("latin-1")
        url = target.url + tail + (("?" + query.decode("latin-1")) if query else "")
        async with asyncio.timeout(target.connect_timeout):
            socket = await session.ws_connect(
                url,
                protocols=protocols,
                headers=fields,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                heartbeat=target.ping_interval,
                max_msg_size=target.max_message_bytes,
                autoclose=True,
                autoping=True,
            )
    except aiohttp.WSServerHandshakeError as exc:
        _verdict(target, probe, exc.status >= 500)
        log.info("downstream refused websocket", service=target.service, status=exc.status)
        status = exc.status if 400 <= exc.status <= 599 else 502
        raise DownstreamRefused(
            render(
                status,
                "DOWNSTREAM_ERROR",
                "The service refused the WebSocket",
                {"service": target.service, "status": exc.status},
            )
        ) from None
    except (TimeoutError, aiohttp.ServerTimeoutError):
        _verdict(target, probe, True)
        raise UpstreamTimeout(
            f"Service {target.service!r} timed out", details={"service": target.service}
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        _verdict(target, probe, True)
        log.warning("downstream websocket failed", service=target.service, error=type(exc).__name__)
        raise UpstreamUnavailable(
            f"Service {target.service!r} is unavailable", details={"service": target.service}
        ) from None
    except StudioError:  # CredentialsUnavailable: the service was never called
        target.breaker.release(probe)
        raise
    except BaseException:
        target.breaker.release(probe)
        raise
    target.breaker.success(probe)
    return socket


def _verdict(target: Target, probe: bool, failed: bool) -> None:
    if failed:
        target.breaker.failure(probe)
    else:
        target.breaker.success(probe)
