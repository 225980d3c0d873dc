"""The exposition of `/metrics`, across workers when PROMETHEUS_MULTIPROC_DIR is set.

Each worker's counters go to the multiprocess files by themselves; its `STATE` gauges are
copied there by a `StatePublisher` thread, so a scrape answered by one worker shows them all.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from app.observability.gauges import STATE, StateGauge


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
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="metrics-publisher", daemon=True)

    def start(self) -> None:
        self.thread.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """At exit: no publish after this, then this worker's live-mode gauges are removed (a
        worker that has exited must not count any more, nor a late publish bring it back)."""
        self.stopped.set()
        with self.lock:
            mark_process_dead(os.getpid(), self.path)  # type: ignore[no-untyped-call]

    def publish(self) -> None:
        """Write the current state (also called by the worker that answers a scrape)."""
        with self.lock:
            if self.stopped.is_set():
                return
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
            if self.stopped.wait(PUBLISH_INTERVAL):
                return


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
    """The exposition text: every worker's metrics when PROMETHEUS_MULTIPROC_DIR is set. It
    reads every worker's files and may wait for the publisher's lock: call it off the loop."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    if _publisher is not None:
        _publisher.publish()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
