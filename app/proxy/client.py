"""The narrow interface the proxy talks to downstreams through, and the pool gate.

One connection pool per service, created at start-up with that service's connection limit and
timeouts, so a slow service exhausts only its own pool. The one implementation is aiohttp's
(`aiohttp_client.py`), chosen by measurement over httpx's stacks (BENCHMARKS.md); the tests
wrap it (`ClientFactory`) to count or break calls.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Protocol

from app.proxy.errors import UpstreamBusy
from app.registry.schema import ServiceConfig

# Idle keep-alive connections are dropped before common servers drop them (uvicorn: 5 s), so a
# request rarely lands on a connection the downstream is closing.
KEEPALIVE_EXPIRY = 4.0

Body = bytes | AsyncIterable[bytes] | None
BUSY_RETRY_AFTER = 1  # seconds: a connection of a busy pool is usually free again by then


class UpstreamError(Exception):
    """A transport failure talking to a downstream."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made: nothing reached the downstream."""


class UpstreamTimeoutError(UpstreamError):
    """Connect, read, write or pool timeout."""


class UpstreamProtocolError(UpstreamError):
    """The connection broke or the downstream spoke invalid HTTP (something may have arrived)."""


class UpstreamResponse(Protocol):
    """A downstream response whose body has not been read yet."""

    status: int
    headers: list[tuple[bytes, bytes]]  # names as sent by the downstream (any case)

    def body(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as it arrives; raises `UpstreamError` subclasses."""
        ...

    async def aclose(self) -> None:
        """Release the connection (closing it when the body was not read to the end)."""
        ...


class UpstreamClient(Protocol):
    """Sends one request to a fixed origin; `target` is the raw path and query."""

    async def send(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: Body
    ) -> UpstreamResponse:
        """Send the request (streaming `body`) and return once the response headers arrived."""
        ...

    async def aclose(self) -> None:
        """Close every pooled connection."""
        ...


# Builds a service's client from its name and config (the proxy's, or a wrapper for tracing).
ClientFactory = Callable[[str, ServiceConfig], "UpstreamClient"]


class PoolGate:
    """At most `size` requests of one service hold a connection; the others wait up to
    `timeout` seconds for one, then get `UpstreamBusy` (503). Owning the wait here, instead of
    inside the pool, tells a full pool (busy, not the downstream's failure) from a slow
    connect (a timeout that counts against the circuit breaker). First come, first served.
    """

    __slots__ = ("_free", "_waiters", "service", "size", "timeout")

    def __init__(self, size: int, timeout: float, service: str = "") -> None:
        self.size = size
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.timeout = timeout
        self.service = service

    def try_acquire(self) -> bool:
        """Take a free slot without waiting (the common case: no coroutine, no timer)."""
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Wait for a released slot; `UpstreamBusy` after `timeout` seconds."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            elif waiter in self._waiters:  # `release` may already have skipped it
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise self._busy() from None
            raise

    def release(self) -> None:
        """Give the slot to the longest waiter, or back to the free count."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    @property
    def in_use(self) -> int:
        """Slots currently held (for tests and metrics)."""
        return self.size - self._free

    def _busy(self) -> UpstreamBusy:
        details: dict[str, object] = {"retry_after": BUSY_RETRY_AFTER}
        if self.service:
            details["service"] = self.service
        return UpstreamBusy(
            f"Service {self.service!r} has no free connection" if self.service else None,
            details=details,
            headers={"Retry-After": str(BUSY_RETRY_AFTER)},
        )
