"""The exchange with a downstream, shared by the proxy, the dashboard and discovery.

One call: the circuit breaker's admission, the service's credentials, the send with retries,
a credential refresh on the downstream's 401, the downstream metrics, and the breaker's
verdict. Retries: only idempotent methods, only after a connect failure (nothing reached the
downstream), at most `MAX_RETRIES`. A downstream 401 refreshes the service credentials and
resends once, but only when the request body can be replayed (no body, or bytes). Neither a
client's stall nor a full pool (`UpstreamBusy`) counts against the breaker: only the
downstream's own failures do.
"""

from __future__ import annotations

import asyncio
import time

from app.core.errors import StudioError
from app.core.logging import get_logger
from app.observability.metrics import DownstreamError, observe_downstream, status_error
from app.proxy.body import RequestBody
from app.proxy.client import (
    Body,
    UpstreamConnectError,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from app.proxy.errors import UpstreamTimeout, UpstreamUnavailable
from app.proxy.headers import RawHeaders
from app.proxy.state import ServiceRuntime

log = get_logger("studio.proxy")

IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"))
MAX_RETRIES = 2
RETRY_BACKOFF = 0.05  # seconds, times the attempt number
FAILURE_STATUSES = frozenset((502, 503, 504))


async def exchange(
    service: ServiceRuntime,
    method: bytes,
    target: bytes,
    headers: RawHeaders,
    payload: Body,
    *,
    use_breaker: bool = True,
) -> UpstreamResponse:
    """Send one request and return the downstream's answer (its body still to read).

    Raises `UpstreamUnavailable`/`UpstreamTimeout` for the downstream's failures, and
    `CircuitOpen`, `CredentialsUnavailable` or `UpstreamBusy` before anything is sent.
    """
    breaker = service.breaker
    probe = breaker.acquire() if use_breaker else False
    started = time.perf_counter()
    try:
        upstream = await _authorized_send(service, method, target, headers, payload)
    except UpstreamError as exc:
        if use_breaker:
            breaker.failure(probe)
        observe_downstream(service.name, None, downstream_error(exc))
        raise as_studio_error(exc, service.name) from None
    except BaseException:
        if use_breaker:
            breaker.release(probe)
        raise
    observe_downstream(service.name, time.perf_counter() - started, status_error(upstream.status))
    if use_breaker:
        if upstream.status in FAILURE_STATUSES:
            breaker.failure(probe)
        else:
            breaker.success(probe)
    return upstream


def broken_stream(service: ServiceRuntime, *, use_breaker: bool = True) -> None:
    """Count a downstream that broke off its answer midway."""
    if use_breaker:
        service.breaker.failure(False)
    observe_downstream(service.name, None, DownstreamError.BROKEN_STREAM)


async def _authorized_send(
    service: ServiceRuntime, method: bytes, target: bytes, headers: RawHeaders, payload: Body
) -> UpstreamResponse:
    creds, auth = await service.authorization()
    upstream = await _send(service, method, target, headers, auth, payload)
    if upstream.status != 401 or creds is None or not isinstance(payload, bytes | None):
        return upstream
    try:
        fresh, fresh_auth = await service.authorization(refresh=True)
    except BaseException:
        await upstream.aclose()
        raise
    if fresh is None or fresh == creds:
        return upstream  # nothing rotated: the same request would get the same 401
    log.info("downstream refused credentials; retrying with refreshed ones", service=service.name)
    await upstream.aclose()
    return await _send(service, method, target, headers, fresh_auth, payload)


async def _send(
    service: ServiceRuntime,
    method: bytes,
    target: bytes,
    headers: RawHeaders,
    auth: bytes | None,
    payload: Body,
) -> UpstreamResponse:
    if auth is not None:
        headers = [*headers, (b"authorization", auth)]
    attempts = 1 + MAX_RETRIES if method in IDEMPOTENT else 1
    attempt = 0
    while True:
        try:
            return await service.client.send(method, target, headers, payload)
        except UpstreamConnectError:
            attempt += 1
            # A started body is gone: it cannot be sent a second time.
            if attempt >= attempts or (isinstance(payload, RequestBody) and payload.started):
                raise
        await asyncio.sleep(RETRY_BACKOFF * attempt)


def downstream_error(exc: UpstreamError) -> DownstreamError:
    """The metrics' kind for a failed exchange."""
    if isinstance(exc, UpstreamTimeoutError):
        return DownstreamError.TIMEOUT
    return DownstreamError.UNAVAILABLE


def as_studio_error(exc: UpstreamError, service: str) -> StudioError:
    log.warning("downstream failed", service=service, error=type(exc).__name__, reason=str(exc))
    if isinstance(exc, UpstreamTimeoutError):
        return UpstreamTimeout(f"Service {service!r} timed out", details={"service": service})
    return UpstreamUnavailable(f"Service {service!r} is unavailable", details={"service": service})
