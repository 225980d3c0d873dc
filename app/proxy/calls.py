"""Studio's own calls to a downstream (dashboard sources, health probes): small JSON GETs.

They go through the proxy's `exchange` (breaker, credentials, retries, metrics) with the
caller's deadline around the whole call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from app.core.errors import StudioError
from app.identity.principal import Principal
from app.observability.metrics import DownstreamError, observe_downstream
from app.proxy.client import UpstreamError
from app.proxy.errors import UpstreamTimeout, UpstreamUnavailable
from app.proxy.exchange import as_studio_error, broken_stream, exchange
from app.proxy.headers import identity_headers
from app.proxy.state import ServiceRuntime

MAX_BODY = 1024 * 1024  # a dashboard source or health answer is small; more is refused


@dataclass(frozen=True, slots=True)
class CallResult:
    status: int
    body: Any  # decoded JSON, or None when the body was empty or not JSON
    latency_ms: float


async def get_json(
    service: ServiceRuntime,
    path: str,
    *,
    deadline: float,
    request_id: str,
    principal: Principal | None = None,
    use_breaker: bool = True,
) -> CallResult:
    """GET `path` (relative to the service's base URL) with the service's credentials.

    Raises `UpstreamUnavailable`, `UpstreamTimeout`, `CircuitOpen` or `CredentialsUnavailable`.
    """
    started = time.perf_counter()
    # Counted before the first await, as the proxy does: a pool a reload retired stays open
    # until this call ends.
    service.enter()
    try:
        async with asyncio.timeout(deadline):
            status, body = await _get(service, path, request_id, principal, use_breaker)
    except TimeoutError:  # the caller's deadline, not the service's own read timeout
        if use_breaker:
            service.breaker.failure(False)
        observe_downstream(service.name, None, DownstreamError.TIMEOUT)
        raise UpstreamTimeout(details={"service": service.name}) from None
    finally:
        service.leave()
    return CallResult(status, body, round((time.perf_counter() - started) * 1000, 2))


async def _get(
    service: ServiceRuntime,
    path: str,
    request_id: str,
    principal: Principal | None,
    use_breaker: bool,
) -> tuple[int, Any]:
    headers = [
        (b"host", service.host_header),
        (b"accept", b"application/json"),
        (b"x-request-id", request_id.encode("ascii")),
    ]
    if principal is not None:
        headers += identity_headers(principal)
    target = service.base_path + path.encode()
    response = await exchange(service, b"GET", target, headers, None, use_breaker=use_breaker)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.body():
            size += len(chunk)
            if size > MAX_BODY:
                raise UpstreamUnavailable("Downstream answer is too large")
            chunks.append(chunk)
    except UpstreamError as exc:
        broken_stream(service, use_breaker=use_breaker)
        raise as_studio_error(exc, service.name) from None
    finally:
        await response.aclose()
    raw = b"".join(chunks)
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    return response.status, body


def error_code(exc: BaseException) -> str:
    """The envelope code that stands for a failed call."""
    return exc.code if isinstance(exc, StudioError) else "INTERNAL_ERROR"
