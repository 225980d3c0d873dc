"""With tracing on, the fast lane is still taken, and a proxied request is traced as without it."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.core.config import Settings
from tests.runtime.conftest import (
    API,
    Downstream,
    exchange,
    requests,
    sign_in,
    studio,
    without_date,
)

# Where the two servers differ by nature: their ports.
PER_SERVER = ("port", "host", "url", "server.address", "net.host")


def span_facts(span: ReadableSpan) -> dict[str, Any]:
    """What a server span says about the request, less where each server listens."""
    attributes = {
        key: value
        for key, value in (span.attributes or {}).items()
        if not any(part in key for part in PER_SERVER)
    }
    return {"name": span.name, "status": span.status.status_code, "attributes": attributes}


async def test_a_proxied_request_is_traced_the_same_with_the_lane_on_and_off(
    runtime_settings: Settings, downstream: tuple[Downstream, int]
) -> None:
    fake, _ = downstream
    token = ""
    raw: dict[bool, bytes] = {}
    facts: dict[bool, dict[str, Any]] = {}
    for on in (True, False):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        settings = runtime_settings.model_copy(update={"runtime_fast_lane": on})
        async with studio(settings, tracer_provider=provider) as running:
            token = token or await sign_in(running.port)
            exporter.clear()  # the sign-in's spans
            fake.seen.clear()
            raw[on] = without_date(await exchange(running.port, requests(token)["proxied"]))
            assert (running.app._lane is not None) is on  # the lane served it when on
        provider.force_flush()
        spans = exporter.get_finished_spans()
        server = [s for s in spans if s.kind == SpanKind.SERVER]
        assert len(server) == 2, [s.name for s in spans]  # the request, sent twice
        assert span_facts(server[0]) == span_facts(server[1])
        facts[on] = span_facts(server[0])
        # The downstream got the server span's trace in its traceparent: the request was traced
        # end to end, not only answered.
        traceparents = [seen[b"traceparent"].decode() for seen in fake.seen]
        assert [t.split("-")[1] for t in traceparents] == [
            f"{s.context.trace_id:032x}" for s in server
        ]
    assert facts[True]["name"] == f"GET {API}/{{service}}/{{path:path}}"
    assert facts[True] == facts[False]
    assert raw[True].startswith(b"HTTP/1.1 200 OK") and raw[True].count(b'"n":1') == 2
    assert raw[True] == raw[False]
