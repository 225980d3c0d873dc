"""Route tables, the circuit breaker and the header rules, without any network."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import MethodNotAllowed
from app.proxy.breaker import CircuitBreaker
from app.proxy.errors import CircuitOpen, RouteNotFound
from app.proxy.headers import inbound, outbound
from app.proxy.routing import CompiledRoutes
from app.registry.schema import ServiceConfig


def config(
    mode: str = "explicit", routes: list[dict[str, Any]] | None = None, **extra: Any
) -> ServiceConfig:
    return ServiceConfig.model_validate(
        {
            "base_url": "http://127.0.0.1:1",
            "mode": mode,
            "permissions": {"read": "n:read", "write": "n:write"},
            "routes": routes or [],
            **extra,
        }
    )


ROUTES = [
    {"method": "GET", "path": "/documents"},
    {"method": "GET", "path": "/documents/stats", "permission": "n:stats"},
    {"method": "GET", "path": "/documents/{id}"},
    {"method": "GET", "path": "/documents/{id}/pages/{n}"},
    {"method": "GET", "path": "/documents/{id}/pages/first", "permission": "n:first"},
    {"method": "GET", "path": "/files/{name}.pdf", "permission": "n:pdf"},
    {
        "method": "POST",
        "path": "/search",
        "permission": "n:read",
        "quota": {"limit": 3, "window": 9},
    },
    {"method": "GET", "path": "/v2/jobs/{job_id}/progress", "envelope": False},
    {"method": "GET", "path": "/"},
]


def test_explicit_matching() -> None:
    routes = CompiledRoutes("nexus", config(routes=ROUTES))
    assert routes.match("GET", b"documents").permission == "n:read"
    assert routes.match("GET", b"documents/stats").permission == "n:stats"
    assert routes.match("GET", b"documents/abc").template == "/documents/{id}"
    assert routes.match("GET", b"documents/a%20b").template == "/documents/{id}"
    assert routes.match("GET", b"documents/1/pages/first").permission == "n:first"
    assert routes.match("GET", b"documents/1/pages/2").template == "/documents/{id}/pages/{n}"
    assert routes.match("GET", b"files/report.pdf").permission == "n:pdf"
    assert routes.match("GET", b"").template == "/"
    search = routes.match("POST", b"search")
    assert search.permission == "n:read"
    assert search.quota is not None and search.quota.limit == 3
    assert search.bucket == "proxy:nexus:POST /search"
    assert routes.match("GET", b"v2/jobs/9/progress").envelope is False
    for method, tail in [
        ("GET", b"documents/"),
        ("GET", b"documents//pages/1"),
        ("GET", b"files/report.txt"),
        ("GET", b"files/.pdf"),
        ("DELETE", b"documents/1"),
        ("GET", b"other"),
        ("GET", b"Documents"),
    ]:
        with pytest.raises(RouteNotFound):
            routes.match(method, tail)
    with pytest.raises(MethodNotAllowed):
        routes.match("TRACE", b"documents")


def test_wildcard_permissions_by_method_class() -> None:
    routes = CompiledRoutes("zen", config("wildcard", quota={"limit": 5, "window": 60}))
    for method in ("GET", "HEAD", "OPTIONS"):
        assert routes.match(method, b"anything/at/all").permission == "n:read"
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert routes.match(method, b"x").permission == "n:write"
    rule = routes.match("GET", b"x")
    assert rule.envelope is True and rule.bucket == "proxy:zen"
    assert rule.quota is not None and rule.quota.limit == 5


def test_wildcard_honours_listed_routes() -> None:
    routes = CompiledRoutes(
        "zen",
        config("wildcard", routes=[{"method": "GET", "path": "/raw/{id}", "envelope": False}]),
    )
    assert routes.match("GET", b"raw/1").envelope is False
    assert routes.match("GET", b"raw/1/more").envelope is True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_cycle() -> None:
    clock = Clock()
    breaker = CircuitBreaker("svc", 3, 30, clock)
    assert breaker.state == "closed"
    for _ in range(2):
        assert breaker.acquire() is False
        breaker.failure(False)
    breaker.success(False)  # a success in between resets the count
    for _ in range(3):
        breaker.acquire()
        breaker.failure(False)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as refused:
        breaker.acquire()
    assert refused.value.headers["Retry-After"] == "30"
    clock.now += 29.5
    with pytest.raises(CircuitOpen) as refused:
        breaker.acquire()
    assert refused.value.headers["Retry-After"] == "1"
    clock.now += 1
    assert breaker.state == "half_open"
    assert breaker.acquire() is True  # the probe
    with pytest.raises(CircuitOpen):
        breaker.acquire()  # exactly one probe at a time
    breaker.failure(True)
    assert breaker.state == "open"  # a failed probe opens again for a full period
    clock.now += 30
    probe = breaker.acquire()
    breaker.release(probe)  # the probe ended without a verdict: the next call may probe
    probe = breaker.acquire()
    assert probe is True
    breaker.success(True)
    assert breaker.state == "closed"
    assert breaker.acquire() is False


def test_breaker_ignores_late_verdicts_while_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker("svc", 1, 10, clock)
    breaker.failure(False)
    assert breaker.state == "open"
    breaker.success(False)  # a request started before the circuit opened
    assert breaker.state == "open"


def test_outbound_rules() -> None:
    client = outbound(
        [
            (b"host", b"studio.example"),
            (b"authorization", b"Bearer t"),
            (b"cookie", b"a=b"),
            (b"connection", b"keep-alive, x-secret"),
            (b"x-secret", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"te", b"trailers"),
            (b"upgrade", b"websocket"),
            (b"x-user-id", b"spoof"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"forwarded", b"for=1.2.3.4"),
            (b"x-real-ip", b"1.2.3.4"),
            (b"x-request-id", b"r"),
            (b"content-length", b"12"),
            (b"accept-encoding", b"gzip"),
            (b"content-type", b"application/json"),
            (b"accept", b"*/*"),
        ]
    )
    assert client.forward == [(b"content-type", b"application/json"), (b"accept", b"*/*")]
    assert client.host == b"studio.example"
    assert client.content_length == 12
    assert client.chunked is False
    assert outbound([(b"transfer-encoding", b"chunked")]).chunked is True


def test_inbound_rules() -> None:
    info = inbound(
        [
            (b"Content-Type", b"Application/JSON; charset=utf-8"),
            (b"Content-Length", b"10"),
            (b"Set-Cookie", b"a=b"),
            (b"WWW-Authenticate", b"Basic"),
            (b"Connection", b"close, X-Internal"),
            (b"X-Internal", b"1"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Server", b"internal/1.0"),
            (b"Content-Disposition", b"attachment"),
            (b"Location", b"http://10.0.0.5:9101/base/next?x=1"),
        ],
        (b"http://10.0.0.5:9101/base", b"/api/v1/nexus"),
    )
    assert info.forward == [
        (b"content-type", b"Application/JSON; charset=utf-8"),
        (b"content-length", b"10"),
        (b"content-disposition", b"attachment"),
        (b"location", b"/api/v1/nexus/next?x=1"),
    ]
    assert info.media == b"application/json"
    assert info.content_length == 10
    assert not info.encoded
    assert inbound([(b"content-encoding", b"gzip")]).encoded
    other = inbound(
        [(b"location", b"http://10.0.0.5:9101/basement")], (b"http://10.0.0.5:9101/base", b"/p")
    )
    assert other.forward == [(b"location", b"http://10.0.0.5:9101/basement")]
