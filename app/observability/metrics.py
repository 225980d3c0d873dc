"""Prometheus metrics: requests, latency, downstream calls, rate limits (gauges: `gauges.py`)."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from prometheus_client import (
    Counter,
    Histogram,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.exposition import start_publisher

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

REGISTRY_RELOADS = Counter(
    "studio_registry_reloads_total",
    "Service registry reloads by outcome: applied, unchanged, rejected (the old one serves)",
    ("outcome",),
)


ROUTE_LABELS = "route_labels"  # app.state key: id(route) -> its full template


def label_routes(app: Any, routers: Iterable[tuple[Any, str]]) -> None:
    """Record each (router, prefix)'s full route templates once: an included route's own
    `path` lacks the prefix it was included under (`/health` live and `{prefix}/health`)."""
    labels: dict[int, str] = getattr(app.state, ROUTE_LABELS, {})
    for router, prefix in routers:
        for route in router.routes:
            labels[id(route)] = prefix + route.path
    setattr(app.state, ROUTE_LABELS, labels)


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), never the raw path."""
    label = scope.get("studio.route_label")
    if label:
        return str(label)
    route = scope.get("route")
    if route is None:
        return "unmatched"
    app = scope.get("app")
    labels = getattr(getattr(app, "state", None), ROUTE_LABELS, None)
    if labels is not None:
        full = labels.get(id(route))
        if full is not None:
            return str(full)
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI; a few microseconds each)."""

    def __init__(self, app: ASGIApp, skip_paths: Iterable[str] = ("/metrics",)) -> None:
        self.app = app
        self.skip = frozenset(skip_paths)
        start_publisher()  # built once per worker, at its first lifespan event

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


# `labels()` validates and locks on every call: the children are looked up once per label set.
# Bounded: route templates, the methods httptools parses, HTTP statuses, registry services.
@functools.lru_cache(maxsize=4096)
def _request_series(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    return REQUESTS.labels(route, method, str(status)), LATENCY.labels(route, method)


class DownstreamError(StrEnum):
    """Why a downstream call failed (the `kind` label of studio_downstream_errors_total)."""

    TIMEOUT = "timeout"  # no answer within the service's timeouts
    UNAVAILABLE = "unavailable"  # refused, reset or otherwise broken before the answer
    BAD_GATEWAY = "http_502"  # answers that count against the breaker
    SERVICE_UNAVAILABLE = "http_503"
    GATEWAY_TIMEOUT = "http_504"
    BROKEN_STREAM = "broken_stream"  # the connection broke while the body was streaming


_STATUS_ERRORS = {
    502: DownstreamError.BAD_GATEWAY,
    503: DownstreamError.SERVICE_UNAVAILABLE,
    504: DownstreamError.GATEWAY_TIMEOUT,
}


def status_error(status: int) -> DownstreamError | None:
    """The error kind a downstream status stands for (502, 503, 504), else None."""
    return _STATUS_ERRORS.get(status)


@functools.lru_cache(maxsize=256)
def _downstream_latency(service: str) -> Histogram:
    return DOWNSTREAM_LATENCY.labels(service)


@functools.lru_cache(maxsize=1024)
def _downstream_errors(service: str, kind: str) -> Counter:
    return DOWNSTREAM_ERRORS.labels(service, kind)


def observe_downstream(
    service: str, seconds: float | None, error: DownstreamError | None = None
) -> None:
    """Record one downstream call: `seconds` to its response headers (None when there were
    none), and its error kind when it failed (a 502/503/504 answer has both)."""
    if seconds is not None:
        _downstream_latency(service).observe(seconds)
    if error is not None:
        _downstream_errors(service, error.value).inc()


def observe_rate_limited(bucket: str) -> None:
    RATE_LIMITED.labels(bucket).inc()


def observe_registry_reload(outcome: str) -> None:
    """Count one registry reload (`outcome`: applied, unchanged or rejected)."""
    REGISTRY_RELOADS.labels(outcome).inc()
