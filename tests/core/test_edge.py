"""The HTTP edge: security headers, HSTS, CORS, header and body limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.support import StateApp

ORIGIN = "http://localhost:5173"


@pytest.fixture
def edge_client(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    def build(peer: str = "127.0.0.1", scheme: str = "http", **overrides: Any) -> Any:
        settings = make_settings(cors_allow_origins=ORIGIN, **overrides)

        class Ctx:
            async def __aenter__(self) -> httpx.AsyncClient:
                self.app = create_app(settings)
                self.lifespan = self.app.router.lifespan_context(self.app)
                state = await self.lifespan.__aenter__()
                transport = httpx.ASGITransport(app=StateApp(self.app, state), client=(peer, 1234))
                self.client = httpx.AsyncClient(transport=transport, base_url=f"{scheme}://studio")
                return self.client

            async def __aexit__(self, *exc: object) -> None:
                await self.client.aclose()
                await self.lifespan.__aexit__(None, None, None)

        return Ctx()

    return build


async def test_security_headers_on_every_response(edge_client: Callable[..., Any]) -> None:
    async with edge_client() as c:
        for r in (
            await c.get("/health"),
            await c.get("/nope"),
            await c.post("/api/v1/auth/login", json={}),
        ):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert "strict-transport-security" not in r.headers  # plain HTTP


async def test_hsts_over_https_and_behind_a_trusted_proxy(edge_client: Callable[..., Any]) -> None:
    async with edge_client(scheme="https", security_hsts_max_age=600) as c:
        assert (
            (await c.get("/health")).headers["strict-transport-security"].startswith("max-age=600")
        )
    async with edge_client(peer="10.0.0.5", trusted_proxies="10.0.0.0/8") as c:
        r = await c.get("/health", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" in r.headers
    async with edge_client(peer="203.0.113.9", trusted_proxies="10.0.0.0/8") as c:
        r = await c.get("/health", headers={"X-Forwarded-Proto": "https"})
        assert (
            "strict-transport-security" not in r.headers
        )  # an untrusted peer's word counts for nothing


async def test_cors_allows_listed_origins_with_credentials(edge_client: Callable[..., Any]) -> None:
    async with edge_client() as c:
        pre = await c.options(
            "/api/v1/auth/login",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization,x-request-id",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == ORIGIN
        assert pre.headers["access-control-allow-credentials"] == "true"
        simple = await c.get("/health", headers={"Origin": ORIGIN})
        assert simple.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        evil = await c.options(
            "/api/v1/auth/login",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert evil.status_code == 400
        assert "access-control-allow-origin" not in evil.headers
        other = await c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        # Preflights carry no token: authenticated and proxied routes must still pass them.
        for path in ("/api/v1/auth/me", "/api/v1/zen/chat/stream", "/api/v1/admin/users"):
            authed = await c.options(
                path,
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert authed.status_code == 200, path
            assert authed.headers["access-control-allow-origin"] == ORIGIN


async def test_oversized_headers_are_431(edge_client: Callable[..., Any]) -> None:
    async with edge_client(max_request_header_bytes=4096) as c:
        r = await c.get("/health", headers={"X-Padding": "a" * 5000})
    assert r.status_code == 431
    assert r.json()["error"]["code"] == "HEADERS_TOO_LARGE"
    assert r.headers["x-request-id"]


async def test_oversized_bodies_are_413_declared_or_streamed(
    edge_client: Callable[..., Any],
) -> None:
    async with edge_client(max_json_body_bytes=2048) as c:
        declared = await c.post("/api/v1/auth/login", content=b"{" + b" " * 4000 + b"}")
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 512

        streamed = await c.post(
            "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        small = await c.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "x"})
        assert small.status_code == 401


@pytest.mark.services  # staging needs real PostgreSQL and Redis URLs
async def test_docs_only_in_dev(make_settings: Callable[..., Settings]) -> None:
    dev = create_app(make_settings())
    assert dev.docs_url == "/docs" and dev.openapi_url == "/openapi.json"
    staging = create_app(
        make_settings(environment="staging", cors_allow_origins="https://app.example.com")
    )
    assert staging.docs_url is None and staging.openapi_url is None
