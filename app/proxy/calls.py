"""Studio's own calls to a downstream (dashboard sources, health probes): small JSON GETs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from app.core.errors import StudioError
from app.identity.principal import Principal
from app.observability.metrics import DownstreamError, observe_downstream, status_error
from app.proxy.client import UpstreamError, UpstreamTimeoutError
from app.proxy.errors import UpstreamTimeout, UpstreamUnavailable
from app.proxy.forwarder import FAILURE_STATUSES
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
    probe = service.breaker.acquire() if use_breaker else False
    started = time.perf_counter()
    try:
        async with asyncio.timeout(deadline):
            result = await _get(service, path, request_id, principal)
    except (UpstreamError, TimeoutError) as exc:
        if use_breaker:
            service.breaker.failure(probe)
        if isinstance(exc, UpstreamTimeoutError | TimeoutError):
            observe_downstream(service.name, None, DownstreamError.TIMEOUT)
            raise UpstreamTimeout(details={"service": service.name}) from None
        observe_downstream(service.name, None, DownstreamError.UNAVAILABLE)
        raise UpstreamUnavailable(details={"service": service.name}) from None
    except BaseException:
        if use_breaker:
            service.breaker.release(probe)
        raise
    observe_downstream(service.name, time.perf_counter() - started, status_error(result[0]))
    if use_breaker:
        if result[0] in FAILURE_STATUSES:
            service.breaker.failure(probe)
        else:
            service.breaker.success(probe)
    return CallResult(result[0], result[1], round((time.perf_counter() - started) * 1000, 2))


async def _get(
    service: ServiceRuntime, path: str, request_id: str, principal: Principal | None
) -> tuple[int, Any]:
    _, auth = await service.authorization()
    headers = [
        (b"host", service.host_header),
        (b"accept", b"application/json"),
        (b"x-request-id", request_id.encode("ascii")),
    ]
    if auth is not None:
        headers.append((b"authorization", auth))
    if principal is not None:
        headers += identity_headers(principal)
    response = await service.client.send(b"GET", service.base_path + path.encode(), headers, None)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.body():
            size += len(chunk)
            if size > MAX_BODY:
                raise UpstreamUnavailable("Downstream answer is too large")
            chunks.append(chunk)
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
