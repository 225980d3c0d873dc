"""OpenTelemetry (optional extra `otel`): FastAPI, SQLAlchemy, Redis and the HTTP clients.

Enabled when the `otel` extra is installed and `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_TRACES_EXPORTER`) is set, unless `OTEL_SDK_DISABLED=true`; the exporter reads the
standard `OTEL_*` variables. Tests pass their own tracer provider.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.core.logging import get_logger

log = get_logger("studio.tracing")


def wanted() -> bool:
    """True when the environment asks for tracing."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_TRACES_EXPORTER")
    )


def _default_provider(service_name: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def instrument_app(app: FastAPI, tracer_provider: Any = None) -> bool:
    """Instrument the ASGI app (server spans and context propagation); False when unavailable."""
    if tracer_provider is None and not wanted():
        return False
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        log.warning("tracing requested but the `otel` extra is not installed")
        return False
    provider = tracer_provider or _default_provider("studio")
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=r"^https?://[^/]+/(health|metrics)$"
    )
    app.state.tracer_provider = provider
    return True


def instrument_clients(provider: Any, engine: Any) -> Callable[[], None]:
    """Instrument the database engine and Redis (no provider: nothing); returns the undo."""
    if provider is None:
        return lambda: None
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation predates SQLAlchemy 2.1 and refuses it by version; the engine events
    # it uses are unchanged, so its check is skipped.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
    redis_instrumentor = RedisInstrumentor()
    if not redis_instrumentor.is_instrumented_by_opentelemetry:
        redis_instrumentor.instrument(tracer_provider=provider)

    def undo() -> None:
        SQLAlchemyInstrumentor().uninstrument()
        redis_instrumentor.uninstrument()

    return undo
