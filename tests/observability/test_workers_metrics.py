"""`studio serve --workers 2`: /metrics sums both workers, whichever answers the scrape."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from app.observability import exposition, multiprocess
from app.observability.gauges import BREAKER
from tests.conftest import RUN_ID
from tests.hardening.processes import studio_env, studio_serve

pytestmark = [pytest.mark.slow, pytest.mark.services]

HEALTH_SERIES = 'studio_http_requests_total{method="GET",route="/health",status="200"}'
BATCH = 20
MAX_REQUESTS = 5000  # a hang guard: two workers share the load long before this


def scraped_total(text: str) -> float:
    for line in text.splitlines():
        if line.startswith(HEALTH_SERIES):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def per_worker(path: Path) -> dict[str, float]:
    """/health requests counted by each worker, read from its own counter file."""
    counts: dict[str, float] = {}
    for file in path.glob("counter_*.db"):
        pid = file.stem.removeprefix("counter_")
        for metric in MultiProcessCollector.merge([str(file)]):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "studio_http_requests_total" and sample.labels == {
                    "route": "/health", "method": "GET", "status": "200"
                }:  # fmt: skip
                    counts[pid] = counts.get(pid, 0.0) + sample.value
    return counts


async def test_two_workers_metrics_are_summed(
    database_url: str, redis_url: str | None, tmp_path: Path
) -> None:
    assert redis_url is not None, "several workers need a shared Redis"  # `services` tests
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = studio_env(
        database_url, redis_url, f"studio-test-{RUN_ID}:workers-{uuid.uuid4().hex[:6]}:",
        tmp_path, TMPDIR=str(temp), LOG_LEVEL="INFO",
    )  # fmt: skip
    env.pop(multiprocess.ENV, None)  # `studio serve` makes one itself
    async with studio_serve(env, tmp_path / "serve.out") as base:
        [metrics_dir] = temp.glob("studio-metrics-*")
        sent = 0
        # Until both workers have served some: new connections, so either may accept each.
        while len([n for n in per_worker(metrics_dir).values() if n]) < 2:
            assert sent < MAX_REQUESTS, f"one worker served all {sent}: {per_worker(metrics_dir)}"
            answers = await asyncio.gather(*(_get(f"{base}/health") for _ in range(BATCH)))
            assert all(r.status_code == 200 for r in answers)
            sent += BATCH
        sent += 1  # the readiness probe studio_serve waited for
        workers = per_worker(metrics_dir)
        assert len(workers) == 2 and sum(workers.values()) == sent
        for _ in range(10):  # whichever worker answers, it reports both
            scrape = await _get(f"{base}/metrics")
            assert scrape.status_code == 200
            assert scraped_total(scrape.text) == sent
            # The state gauges too, aggregated over the live workers (no pid label).
            assert 'studio_circuit_breaker_open{service="zen"} 0.0' in scrape.text
            assert "studio_session_cache_entries " in scrape.text


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url)


def test_one_worker_needs_no_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(multiprocess.ENV, "")  # unset, and restored after the test
    assert multiprocess.prepare(1) is None


def test_several_workers_get_a_fresh_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(multiprocess.ENV, "")  # unset, and restored after the test
    monkeypatch.setenv("TMPDIR", str(tmp_path))

    monkeypatch.setattr(tempfile, "tempdir", None)
    made = multiprocess.prepare(2)
    assert made is not None and made.is_dir() and made.parent == tmp_path
    assert os.environ[multiprocess.ENV] == str(made)
    (made / "gauge_livesum_1.db").write_bytes(b"stale")
    (made / "keep.txt").write_text("not ours")
    assert multiprocess.prepare(2) == made
    assert [p.name for p in made.iterdir()] == ["keep.txt"]


def test_a_stopped_publisher_ends_its_thread_and_writes_no_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only a breaker: whatever earlier tests left in the process-wide STATE is set aside.
    monkeypatch.setattr(exposition.STATE, "breakers", lambda: {"zen": "closed"})
    monkeypatch.setattr(exposition.STATE, "active_sessions", None)
    monkeypatch.setattr(exposition.STATE, "session_cache", None)
    publisher = exposition.StatePublisher(str(tmp_path))
    publisher.publish()
    assert list(publisher.gauges) == [BREAKER]  # publishing writes the state
    publisher.thread.start()  # not start(): no exit hook left behind in the test process
    publisher.stop()
    publisher.thread.join(timeout=30)
    assert not publisher.thread.is_alive()
    publisher.gauges.clear()
    publisher.publish()  # a scrape answered during shutdown
    assert publisher.gauges == {}
