"""A downstream refusing, slow, silent, resetting or trickling; a slowloris client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.main import create_app
from tests.hardening.conftest import API, assert_error, overlay, user
from tests.harness.faultproxy import FaultProxy
from tests.support import live_server, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.services]
ZEN = {
    "timeouts": {"connect": 1, "read": 0.5, "write": 1, "pool": 1},
    "circuit_breaker": {"failure_threshold": 3, "open_seconds": 1},
}


@pytest.fixture
async def zen_proxy(downstreams: dict[str, str]) -> AsyncIterator[FaultProxy]:
    target = urlsplit(downstreams["zen"])
    async with FaultProxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        yield proxy


@pytest.fixture
def faulty(studio: Callable[..., Any], zen_proxy: FaultProxy, tmp_path: Path) -> Callable[..., Any]:
    def run(**zen: Any) -> Any:
        return studio(
            urls={"zen": zen_proxy.url},
            service_overlay_path=overlay(tmp_path, zen={**ZEN, **zen}),
        )

    return run


async def test_downstream_refusing_is_502_then_recovers(
    faulty: Callable[..., Any], zen_proxy: FaultProxy
) -> None:
    async with faulty(circuit_breaker={"failure_threshold": 50, "open_seconds": 1}) as (c, state):
        _, headers = await user(c, state, "admin")
        zen_proxy.mode = "refuse"
        assert_error(await c.get(f"{API}/zen/echo", headers=headers), 502, "UPSTREAM_UNAVAILABLE")
        assert (await c.get(f"{API}/nexus/documents", headers=headers)).status_code == 200
        zen_proxy.mode = "pass"
        assert (await c.get(f"{API}/zen/echo", headers=headers)).status_code == 200


@pytest.mark.parametrize("mode", ["latency", "blackhole"])
async def test_slow_or_silent_downstream_is_504_then_recovers(
    faulty: Callable[..., Any], zen_proxy: FaultProxy, mode: Any
) -> None:
    async with faulty(circuit_breaker={"failure_threshold": 50, "open_seconds": 1}) as (c, state):
        _, headers = await user(c, state, "admin")
        # Far beyond the 0.5 s read timeout: only the timeout can end the request (else the
        # client's own 30 s timeout fails the test).
        zen_proxy.mode, zen_proxy.delay = mode, 3600.0
        assert_error(await c.get(f"{API}/zen/echo", headers=headers), 504, "UPSTREAM_TIMEOUT")
        zen_proxy.mode = "pass"
        assert (await c.get(f"{API}/zen/echo", headers=headers)).status_code == 200


async def test_reset_mid_response_is_502_then_recovers(
    faulty: Callable[..., Any], zen_proxy: FaultProxy
) -> None:
    async with faulty(circuit_breaker={"failure_threshold": 50, "open_seconds": 1}) as (c, state):
        _, headers = await user(c, state, "admin")
        zen_proxy.mode, zen_proxy.reset_after = "reset", 40  # inside the status line/headers
        assert_error(await c.get(f"{API}/zen/echo", headers=headers), 502, "UPSTREAM_UNAVAILABLE")
        zen_proxy.mode = "pass"
        assert (await c.get(f"{API}/zen/echo", headers=headers)).status_code == 200


async def test_trickling_downstream_still_answers_whole(
    faulty: Callable[..., Any], zen_proxy: FaultProxy
) -> None:
    async with faulty() as (c, state):
        _, headers = await user(c, state, "admin")
        expected = (await c.get(f"{API}/zen/text", headers=headers)).content
        zen_proxy.mode, zen_proxy.delay, zen_proxy.slow_chunk = "slow", 0.002, 8
        r = await c.get(f"{API}/zen/text", headers=headers)
        assert r.status_code == 200 and r.content == expected


async def test_breaker_opens_per_service_and_closes_after_probe(
    faulty: Callable[..., Any], zen_proxy: FaultProxy
) -> None:
    async with faulty() as (c, state):
        _, headers = await user(c, state, "admin")
        zen_proxy.mode = "refuse"
        for _ in range(3):
            assert (await c.get(f"{API}/zen/echo", headers=headers)).status_code == 502
        before = zen_proxy.connections
        opened = assert_error(await c.get(f"{API}/zen/echo", headers=headers), 503, "CIRCUIT_OPEN")
        assert zen_proxy.connections == before  # the open circuit never dials the service
        assert (
            opened["error"]
            and int((await c.get(f"{API}/zen/echo", headers=headers)).headers["retry-after"]) >= 1
        )
        assert (await c.get(f"{API}/nexus/documents", headers=headers)).status_code == 200
        zen_proxy.mode = "pass"
        breaker = state["proxy"].services["zen"].breaker
        await wait_until(lambda: breaker.state == "half_open", 10, "the open period ends")
        assert (await c.get(f"{API}/zen/echo", headers=headers)).status_code == 200  # probe
        assert breaker.state == "closed"
        assert (await c.get(f"{API}/zen/echo", headers=headers)).status_code == 200


async def test_slowloris_clients_do_not_starve_others(
    make_settings: Callable[..., Any],
) -> None:
    app = create_app(make_settings())
    async with live_server(app) as base:
        port = int(base.rsplit(":", 1)[1])
        writers: list[asyncio.StreamWriter] = []
        for _ in range(100):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-a: ")
            writers.append(writer)
        await asyncio.gather(*(w.drain() for w in writers))

        async def drip() -> None:
            while True:  # until cancelled: every answer below arrives while they hold on
                for w in writers:
                    with contextlib.suppress(ConnectionError):
                        w.write(b"a")
                await asyncio.sleep(0.1)

        dripping = asyncio.create_task(drip())
        try:
            # A starved server would leave these unanswered: the client's timeout fails the test.
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                for _ in range(5):
                    r = await http.get(f"{API}/health")
                    assert r.status_code == 200
                    assert not dripping.done()
        finally:
            dripping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dripping
            for w in writers:
                w.close()
