"""Prometheus metrics: requests, latency, downstream calls, breakers, rate limits, sessions."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
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
BREAKER_CODES = {"closed": 0, "half_open": 1, "open": 2}
RATE_LIMITED = Counter(
    "studio_rate_limit_rejections_total", "Requests refused by a rate limit, by bucket", ("bucket",)
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


MultiprocessMode = Literal["livemax", "livemin", "livesum"]


class StateGauge(NamedTuple):
    """A gauge read from the running app, and how workers' values combine (multiprocess)."""

    name: str
    help: str
    labels: tuple[str, ...]
    mode: MultiprocessMode


BREAKER = StateGauge(
    "studio_circuit_breaker_open",
    "Circuit breaker state per service (0 closed, 1 half-open, 2 open)",
    ("service",),
    "livemax",  # the worst worker's
)
SESSIONS = StateGauge(
    "studio_active_sessions", "Live sessions in Redis (sampled)", (), "livemax"
)  # every worker samples the same Redis
CACHE_LIVE = StateGauge(
    "studio_session_cache_live",
    "1 while the session cache serves (its pub/sub subscriber is current); "
    "0 if any worker's is off",
    (),
    "livemin",
)
CACHE_ENTRIES = StateGauge(
    "studio_session_cache_entries", "Sessions held in the workers' caches", (), "livesum"
)
CACHE_LOOKUPS = StateGauge(
    "studio_session_cache_lookups",
    "Session checks since each worker started, by result (hit: answered by the cache; miss: "
    "read from Redis); cumulative, so rate() gives the hit ratio",
    ("result",),
    "livesum",
)


class CacheState(NamedTuple):
    """What the session cache reports to /metrics."""

    live: bool
    entries: int
    hits: int
    misses: int


Sample = tuple[StateGauge, tuple[str, ...], float]


class StateCollector(Collector):
    """Gauges read at scrape time from the running app (breakers, sessions)."""

    def __init__(self) -> None:
        self.breakers: Callable[[], Mapping[str, str]] | None = None
        self.active_sessions: Callable[[], int | None] | None = None
        self.session_cache: Callable[[], CacheState] | None = None

    def samples(self) -> Iterator[Sample]:
        """This process's current values."""
        for service, state in (self.breakers() if self.breakers else {}).items():
            yield BREAKER, (service,), BREAKER_CODES.get(state, 0)
        sessions = self.active_sessions() if self.active_sessions else None
        if sessions is not None:
            yield SESSIONS, (), sessions
        if self.session_cache is not None:
            cache = self.session_cache()
            yield CACHE_LIVE, (), int(cache.live)
            yield CACHE_ENTRIES, (), cache.entries
            yield CACHE_LOOKUPS, ("hit",), cache.hits
            yield CACHE_LOOKUPS, ("miss",), cache.misses

    def collect(self) -> Iterable[GaugeMetricFamily]:
        families = {spec: _family(spec) for spec in (BREAKER, SESSIONS)}  # listed even if empty
        for spec, labels, value in self.samples():
            family = families.get(spec) or families.setdefault(spec, _family(spec))
            family.add_metric(list(labels), value)
        yield from families.values()


def _family(spec: StateGauge) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))


STATE = StateCollector()
REGISTRY.register(STATE)


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR when set: every worker writes its series there."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


PUBLISH_INTERVAL = 5.0


class StatePublisher:
    """Copies this worker's `STATE` into the multiprocess files (a daemon thread per worker),
    so that a scrape answered by one worker shows every live worker's state."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Created at a first value: an unlabelled gauge would otherwise report a made-up 0.
        # Registered nowhere: `render` reads them back through the files.
        self.gauges: dict[StateGauge, Gauge] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="metrics-publisher", daemon=True)

    def start(self) -> None:
        self.thread.start()
        # Live-mode gauges of a worker that has exited must not count any more.
        atexit.register(mark_process_dead, os.getpid(), self.path)

    def publish(self) -> None:
        """Write the current state (also called by the worker that answers a scrape)."""
        with self.lock:
            for spec, labels, value in STATE.samples():
                gauge = self.gauges.get(spec)
                if gauge is None:
                    gauge = self.gauges[spec] = Gauge(
                        spec.name,
                        spec.help,
                        spec.labels,
                        registry=None,
                        multiprocess_mode=spec.mode,
                    )
                (gauge.labels(*labels) if labels else gauge).set(value)

    def _run(self) -> None:
        while True:
            # A callback failing mid-shutdown: the next round publishes again.
            with contextlib.suppress(Exception):
                self.publish()
            time.sleep(PUBLISH_INTERVAL)


_publisher: StatePublisher | None = None


def start_publisher() -> None:
    """In multiprocess mode, start this process's publisher (once)."""
    global _publisher
    path = multiprocess_dir()
    if path is None or _publisher is not None:
        return
    _publisher = StatePublisher(path)
    _publisher.start()


def render() -> tuple[bytes, str]:
    """The exposition text: every worker's metrics when PROMETHEUS_MULTIPROC_DIR is set."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    if _publisher is not None:
        _publisher.publish()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


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
