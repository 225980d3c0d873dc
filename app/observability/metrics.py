"""Prometheus metrics: requests, latency, downstream calls, breakers, rate limits, sessions."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "studio_http_requests_total",
    "HTTP requests by route template, method and status",
    ("route", "method", "status"),
)
LATENCY = Histogram(
    "studio_http_request_duration_seconds",
    "Time to the end of the response, by route",
    ("route", "method"),
    buckets=LATENCY_BUCKETS,
)
DOWNSTREAM_LATENCY = Histogram(
    "studio_downstream_duration_seconds",
    "Downstream time to response headers, by service",
    ("service",),
    buckets=LATENCY_BUCKETS,
)
DOWNSTREAM_ERRORS = Counter(
    "studio_downstream_errors_total",
    "Downstream failures by service and kind",
    ("service", "kind"),
)
RATE_LIMITED = Counter(
    "studio_rate_limit_rejections_total", "Requests refused by a rate limit, by bucket", ("bucket",)
)


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), never the raw path."""
    label = scope.get("studio.route_label")
    if label:
        return str(label)
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI; a few microseconds each)."""

    def __init__(self, app: ASGIApp, skip_paths: Iterable[str] = ("/metrics",)) -> None:
        self.app = app
        self.skip = frozenset(skip_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            count, latency = _request_series(route_label(scope), scope["method"], status)
            count.inc()
            latency.observe(time.perf_counter() - started)


class StateCollector(Collector):
    """Gauges read at scrape time from the running app (breakers, sessions)."""

    def __init__(self) -> None:
        self.breakers: Callable[[], dict[str, str]] | None = None
        self.active_sessions: Callable[[], int | None] | None = None
        self.session_cache: Callable[[], tuple[bool, int]] | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        breaker = GaugeMetricFamily(
            "studio_circuit_breaker_open",
            "Circuit breaker state per service (0 closed, 1 half-open, 2 open)",
            labels=["service"],
        )
        codes = {"closed": 0, "half_open": 1, "open": 2}
        for service, state in (self.breakers() if self.breakers else {}).items():
            breaker.add_metric([service], codes.get(state, 0))
        yield breaker
        sessions = GaugeMetricFamily("studio_active_sessions", "Live sessions in Redis (sampled)")
        value = self.active_sessions() if self.active_sessions else None
        if value is not None:
            sessions.add_metric([], value)
        yield sessions
        if self.session_cache is not None:
            live, entries = self.session_cache()
            yield GaugeMetricFamily(
                "studio_session_cache_live",
                "1 while this worker's session cache serves (its pub/sub subscriber is current)",
                value=int(live),
            )
            yield GaugeMetricFamily(
                "studio_session_cache_entries",
                "Sessions held in this worker's cache",
                value=entries,
            )


STATE = StateCollector()
REGISTRY.register(STATE)


def render() -> tuple[bytes, str]:
    """The exposition text: every worker's metrics when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(STATE)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# `labels()` validates and locks on every call: the children are looked up once per label set.
# Bounded: route templates, the methods httptools parses, HTTP statuses, registry services.
@functools.lru_cache(maxsize=4096)
def _request_series(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    return REQUESTS.labels(route, method, str(status)), LATENCY.labels(route, method)


@functools.lru_cache(maxsize=256)
def _downstream_series(service: str) -> Histogram:
    return DOWNSTREAM_LATENCY.labels(service)


def observe_downstream(service: str, seconds: float | None, error: str | None) -> None:
    """Called by the forwarder once per downstream call."""
    if seconds is not None:
        _downstream_series(service).observe(seconds)
    if error is not None:
        DOWNSTREAM_ERRORS.labels(service, error).inc()


def observe_rate_limited(bucket: str) -> None:
    RATE_LIMITED.labels(bucket).inc()
