"""Client spans for the proxy's downstream calls (the `otel` extra; see observability/tracing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.proxy.client import Body, ClientFactory, UpstreamClient, UpstreamResponse
from app.registry.schema import ServiceConfig


class TracedUpstreamClient:
    """An `UpstreamClient` that opens a client span per call and propagates its context."""

    def __init__(self, inner: UpstreamClient, service: str, provider: Any) -> None:
        from opentelemetry import trace

        self._inner = inner
        self._service = service
        self._tracer = trace.get_tracer("studio.proxy", tracer_provider=provider)

    async def send(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: Body
    ) -> UpstreamResponse:
        from opentelemetry.propagate import inject
        from opentelemetry.trace import SpanKind, Status, StatusCode

        verb = method.decode("ascii")
        with self._tracer.start_as_current_span(
            f"{verb} {self._service}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": verb, "studio.service": self._service},
        ) as span:
            carrier: dict[str, str] = {}
            inject(carrier)  # W3C traceparent (and baggage) for the downstream
            traced = [*headers, *((k.encode(), v.encode()) for k, v in carrier.items())]
            try:
                response = await self._inner.send(method, target, traced, body)
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def traced_client_factory(
    provider: Any, default_client: ClientFactory
) -> Callable[[str, ServiceConfig], UpstreamClient]:
    """Wrap each service's default client in a `TracedUpstreamClient`."""

    def factory(name: str, config: ServiceConfig) -> UpstreamClient:
        return TracedUpstreamClient(default_client(name, config), name, provider)

    return factory
