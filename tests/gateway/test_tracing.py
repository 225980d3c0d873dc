"""OpenTelemetry: one request's spans across Studio, PostgreSQL, Redis and a downstream."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.fakes.server import FakeService


@pytest.mark.services  # the PostgreSQL span is the point
async def test_one_trace_across_every_hop(
    gateway: Any, fake_services: dict[str, FakeService]
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    zen = fake_services["zen"]
    zen.reset()
    async with gateway(tracer_provider=provider) as (client, _):
        # Readiness touches PostgreSQL and Redis and, with no background checker, probes
        # every downstream live: four kinds of hop in one request.
        r = await client.get("/api/v1/health")
        assert r.status_code == 200
    provider.force_flush()
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(server) == 1, [s.name for s in spans]
    trace_id = server[0].context.trace_id
    mine = [s for s in spans if s.context.trace_id == trace_id]
    systems = {s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in mine}
    assert "postgresql" in systems and "redis" in systems, [
        (s.name, dict(s.attributes)) for s in mine
    ]
    downstream = [s for s in mine if s.name == "GET zen" and s.kind == SpanKind.CLIENT]
    assert downstream, [s.name for s in mine]
    # The downstream received the same trace in its traceparent header.
    probe = next(r for r in zen.requests if r.path.endswith("/health"))
    traceparent = dict(probe.headers)["traceparent"]
    assert traceparent.split("-")[1] == f"{trace_id:032x}"
