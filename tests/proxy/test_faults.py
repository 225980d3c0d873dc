"""Refused, slow, hung and broken downstreams; retries; the circuit breaker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.proxy.client import Body, UpstreamClient, UpstreamConnectError, UpstreamResponse
from tests.fakes.server import FakeService
from tests.proxy.conftest import SERVICE_PASSWORD, SERVICE_USER, Studio, bearer, eventually
from tests.support import live_server


async def test_refused_connection_is_502(studio: Studio) -> None:
    r = await studio.get("/dead/x")
    assert r.status_code == 502
    assert r.json()["error"] == {"code": "UPSTREAM_UNAVAILABLE", "details": {"service": "dead"}}
    assert "127.0.0.1" not in r.text


async def test_timeout_is_504(studio: Studio) -> None:
    # `slow` waits 0.5 s for an answer that takes 3 s.
    r = await studio.get("/slow/slow?seconds=3")
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "UPSTREAM_TIMEOUT"


async def test_connection_dropped_before_answer_is_502(studio: Studio) -> None:
    r = await studio.get("/broken/x")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"


async def test_connection_dropped_mid_json_is_502(studio: Studio) -> None:
    r = await studio.get("/zen/reset?type=json")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"


async def test_connection_dropped_mid_stream_truncates_the_response(studio: Studio) -> None:
    async with studio.http.stream("GET", "/api/v1/zen/reset", headers=bearer("admin")) as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == "1000000"
        with pytest.raises(httpx.TransportError):
            await r.aread()
    # Studio itself is fine afterwards.
    assert (await studio.get("/zen/x")).status_code == 200


async def test_breaker_opens_after_threshold_and_closes_after_probe(studio: Studio) -> None:
    breaker = studio.proxy.services["phoenix"].breaker
    for _ in range(2):
        assert (await studio.get("/phoenix/x")).status_code == 502
    assert breaker.state == "open"
    r = await studio.get("/phoenix/x")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "CIRCUIT_OPEN"
    assert 1 <= int(r.headers["retry-after"]) <= 10
    assert studio.proxy.breaker_states()["phoenix"] == "open"

    # The service comes back; once the open period is over, one probe goes through.
    fake = FakeService("phoenix", SERVICE_USER, SERVICE_PASSWORD)
    async with live_server(fake, port=studio.phoenix_port):
        assert (await studio.get("/phoenix/x")).status_code == 503  # still open
        assert fake.calls() == []
        studio.clock.advance(10)
        assert breaker.state == "half_open"
        assert (await studio.get("/phoenix/x")).status_code == 200
        assert breaker.state == "closed"
        assert (await studio.get("/phoenix/x")).status_code == 200
        assert len(fake.calls()) == 2


async def test_breaker_counts_5xx_gateway_answers(studio: Studio) -> None:
    breaker = studio.proxy.services["zen"].breaker
    for _ in range(4):
        assert (await studio.get("/zen/status/503")).status_code == 503
    assert breaker.failures == 4
    assert (await studio.get("/zen/status/500")).status_code == 500  # the service is up
    assert breaker.failures == 0
    assert breaker.state == "closed"


async def test_open_circuit_never_contacts_the_service(studio: Studio) -> None:
    for _ in range(3):
        await studio.get("/dead/x")
    r = await studio.get("/dead/x")
    assert r.status_code == 503
    assert r.json()["error"]["details"]["service"] == "dead"


async def test_hung_service_does_not_slow_another(studio: Studio) -> None:
    hung = [asyncio.create_task(studio.get("/hung/hang")) for _ in range(6)]
    try:
        # Both pooled connections of `hung` are stuck once the fake holds two requests.
        assert await eventually(lambda: len(studio.fakes.hung.calls("/hang")) == 2, timeout=30)
        results = await asyncio.gather(*(studio.get(f"/zen/fast/{i}") for i in range(30)))
        assert all(r.status_code == 200 for r in results)
        assert all(not task.done() for task in hung)  # still stuck while zen answered 30
    finally:
        for task in hung:
            task.cancel()
        await asyncio.gather(*hung, return_exceptions=True)
    # Abandoned requests give their downstream connections back at once, not after the
    # 30 s read timeout: the pool of two serves a new request (its read timeout would be
    # the only other way out, and the guard below is shorter than that).
    r = await asyncio.wait_for(studio.get("/hung/echo"), 20)
    assert r.status_code == 200


class Flaky:
    """Fails the first `failures` sends with a connect error, then delegates."""

    def __init__(self, inner: UpstreamClient, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls: list[bytes] = []

    async def send(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: Body
    ) -> UpstreamResponse:
        self.calls.append(method)
        if len(self.calls) <= self.failures:
            raise UpstreamConnectError("ConnectError")
        return await self.inner.send(method, target, headers, body)

    async def aclose(self) -> None:
        await self.inner.aclose()


def flaky(failures: int, holder: dict[str, Flaky]) -> Callable[[str, UpstreamClient], Any]:
    def wrap(name: str, client: UpstreamClient) -> UpstreamClient:
        if name != "zen":
            return client
        holder["zen"] = Flaky(client, failures)
        return holder["zen"]

    return wrap


async def test_idempotent_requests_are_retried_after_connect_failures(
    start_studio: Callable[..., Any],
) -> None:
    holder: dict[str, Flaky] = {}
    async with start_studio(wrap=flaky(2, holder)) as studio:
        r = await studio.request("PUT", "/zen/x", content=b"hello")
        assert r.status_code == 200
        assert r.json()["result"]["body_length"] == 5
        assert holder["zen"].calls == [b"PUT"] * 3


async def test_retries_stop_after_two(start_studio: Callable[..., Any]) -> None:
    holder: dict[str, Flaky] = {}
    async with start_studio(wrap=flaky(3, holder)) as studio:
        r = await studio.get("/zen/x")
        assert r.status_code == 502
        assert holder["zen"].calls == [b"GET"] * 3


async def test_non_idempotent_requests_are_not_retried(start_studio: Callable[..., Any]) -> None:
    holder: dict[str, Flaky] = {}
    async with start_studio(wrap=flaky(1, holder)) as studio:
        r = await studio.request("POST", "/zen/x", content=b"once")
        assert r.status_code == 502
        assert holder["zen"].calls == [b"POST"]
        assert studio.fakes.zen.calls() == []
