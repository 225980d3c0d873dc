"""Downstream health: a background checker (when enabled) or short-lived live probes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from app.core.logging import get_logger
from app.proxy.calls import get_json
from app.proxy.state import ProxyState, ServiceRuntime

log = get_logger("studio.discovery")

Status = Literal["up", "down", "unknown"]
LIVE_PROBE_TTL = 5.0  # a burst of callers shares one live probe per service
PROBE_TIMEOUT_CAP = 5.0


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    service: str
    status: Status
    latency_ms: float | None
    http_status: int | None
    checked_at: datetime | None

    def public(self) -> dict[str, Any]:
        return asdict(self)


def _timeout(service: ServiceRuntime) -> float:
    t = service.config.timeouts
    return min(t.connect + t.read, PROBE_TIMEOUT_CAP)


class HealthChecker:
    """Keeps the newest probe result per service; probes in the background when started."""

    def __init__(self, proxy: ProxyState, interval: float) -> None:
        self.proxy = proxy
        self.interval = interval
        self.results: dict[str, ServiceHealth] = {}
        self._fetched_at: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Task[ServiceHealth]] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def probe(self, name: str) -> ServiceHealth:
        """Ask the service's health path now (no breaker: a probe must see a recovered service)."""
        service = self.proxy.services.get(name)
        if service is None:  # a reload removed it since the probe was asked for
            return ServiceHealth(name, "unknown", None, None, None)
        try:
            result = await get_json(
                service,
                service.config.health_path,
                deadline=_timeout(service),
                request_id=f"health-{name}-{int(time.time())}",
                use_breaker=False,
            )
        except Exception as exc:  # down, whatever the reason; the reason stays in our logs
            log.info("health probe failed", service=name, error=type(exc).__name__)
            health = ServiceHealth(name, "down", None, None, datetime.now(UTC))
        else:
            status: Status = "up" if 200 <= result.status < 300 else "down"
            health = ServiceHealth(
                name, status, result.latency_ms, result.status, datetime.now(UTC)
            )
        if self.proxy.services.get(name) is service:  # not a result of a replaced service
            self.results[name] = health
            self._fetched_at[name] = time.monotonic()
        return health

    def follow(self, changed: tuple[str, ...], removed: tuple[str, ...]) -> None:
        """After a registry reload: forget what was known of services it changed or removed
        (a moved service is probed afresh); the loop probes whatever serves at its next round."""
        for name in (*changed, *removed):
            self.results.pop(name, None)
            self._fetched_at.pop(name, None)

    async def current(self, name: str) -> ServiceHealth:
        """The checker's newest result, else a live probe shared by concurrent callers."""
        fetched = self._fetched_at.get(name)
        fresh_for = self.interval * 2 if self._task else LIVE_PROBE_TTL
        if fetched is not None and time.monotonic() - fetched < fresh_for:
            return self.results[name]
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.create_task(self.probe(name))
            self._inflight[name] = task
            task.add_done_callback(lambda _: self._inflight.pop(name, None))
        return await asyncio.shield(task)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Status and circuit of every service, without probing (for `{prefix}/health`)."""
        out: dict[str, dict[str, Any]] = {}
        for name, service in self.proxy.services.items():
            known = self.results.get(name)
            out[name] = {
                "status": known.status if known else "unknown",
                "circuit": service.breaker.state,
            }
        return out

    async def overview(self) -> dict[str, dict[str, Any]]:
        """Every service's status and circuit: the checker's results, or live probes (cached)."""
        if self._task is None:
            await asyncio.gather(
                *(self.current(n) for n in self.proxy.services), return_exceptions=True
            )
        return self.snapshot()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            await asyncio.gather(
                *(self.probe(n) for n in self.proxy.services), return_exceptions=True
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="service-health-checker")

    async def stop(self) -> None:
        """Stop the loop and any probe in flight."""
        self._stop.set()
        tasks = [t for t in (self._task, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
