"""`/metrics` answers only to peers in METRICS_ALLOW_CIDRS, judged by the TCP peer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.core.config import Settings
from app.main import create_app
from tests.support import StateApp


@asynccontextmanager
async def studio(settings: Settings, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=StateApp(app, dict(state)), client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
            yield client


async def test_loopback_and_private_peers_read_metrics(make_settings: Callable[..., Any]) -> None:
    for peer in ("127.0.0.1", "10.1.2.3", "192.168.7.8", "::1"):
        async with studio(make_settings(), peer) as client:
            r = await client.get("/metrics")
            assert r.status_code == 200, peer
            assert "studio_http_requests_total" in r.text


async def test_a_public_peer_gets_404_in_the_envelope(make_settings: Callable[..., Any]) -> None:
    async with studio(make_settings(), "203.0.113.7") as client:
        r = await client.get("/metrics")
        spoofed = await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    for answer in (r, spoofed):
        assert answer.status_code == 404
        body = answer.json()
        assert body["success"] is False and body["error"]["code"] == "NOT_FOUND"
        assert "studio_" not in answer.text


async def test_the_allowed_networks_are_a_setting(make_settings: Callable[..., Any]) -> None:
    settings = make_settings(metrics_allow_cidrs=["203.0.113.0/24"])
    async with studio(settings, "203.0.113.7") as client:
        assert (await client.get("/metrics")).status_code == 200
    async with studio(settings, "127.0.0.1") as client:
        assert (await client.get("/metrics")).status_code == 404
