"""Per-service circuit breaker: closed -> open -> half-open (one probe) -> closed or open.

What counts as a failure is decided by the forwarder: transport failures (refused or reset
connections, timeouts) and 502/503/504 answers. Any other answer, 500 and 4xx included, is
a success: the service is up and talking, even if it disliked this request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

from app.core.logging import get_logger
from app.proxy.errors import CircuitOpen

log = get_logger("studio.proxy.breaker")

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Counts consecutive failures; one event loop, so no locking is needed."""

    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_probing",
        "name",
        "open_seconds",
        "threshold",
    )

    def __init__(
        self,
        name: str,
        failure_threshold: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = failure_threshold
        self.open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """`closed`, `open`, or `half_open` (the open period is over; the next call probes)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.open_seconds:
            return "open"
        return "half_open"

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def acquire(self) -> bool:
        """Admit a call or raise `CircuitOpen`; True when the call is the half-open probe."""
        if self._opened_at is None:
            return False
        remaining = self.open_seconds - (self._clock() - self._opened_at)
        if remaining > 0:
            raise self._refusal(remaining)
        if self._probing:
            raise self._refusal(1.0)
        self._probing = True
        return True

    def success(self, probe: bool) -> None:
        """The service answered; a successful probe closes the circuit."""
        if probe:
            log.info("circuit closed", service=self.name)
            self._opened_at = None
            self._probing = False
            self._failures = 0
        elif self._opened_at is None:
            self._failures = 0

    def failure(self, probe: bool) -> None:
        """The service failed; a failed probe or the threshold-th failure opens the circuit."""
        if probe:
            self._open()
        elif self._opened_at is None:
            self._failures += 1
            if self._failures >= self.threshold:
                self._open()

    def release(self, probe: bool) -> None:
        """The call ended without a verdict (client gone, local error): free the probe slot."""
        if probe:
            self._probing = False

    def _open(self) -> None:
        log.warning("circuit opened", service=self.name, failures=self._failures)
        self._opened_at = self._clock()
        self._probing = False
        self._failures = 0

    def _refusal(self, remaining: float) -> CircuitOpen:
        retry_after = max(1, math.ceil(remaining))
        return CircuitOpen(
            f"Service {self.name!r} is temporarily disabled after repeated failures",
            details={"service": self.name, "retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
