"""Gauges read from the running app at scrape time: breakers, live sessions, the session cache.

Start-up hooks hand `STATE` the callables it reads (`app/startup.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Literal, NamedTuple

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BREAKER_CODES = {"closed": 0, "half_open": 1, "open": 2}
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
