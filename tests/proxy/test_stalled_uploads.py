"""Clients that stall mid-upload, a full connection pool and the per-user upload cap.

A raw-socket client declares a body, sends part of it and goes silent. Studio must answer
408 REQUEST_TIMEOUT after the service's `write` timeout, abort the downstream request (the
downstream sees its body cut), free the connection for other users, and never count the
stall against the circuit breaker. A pool with no free connection within the service's
`pool` timeout is 503 UPSTREAM_BUSY, not a downstream failure. One user holds at most
PROXY_MAX_UPLOADS_PER_USER streamed uploads at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from starlette.types import Receive, Scope, Send

from app.proxy.client import PoolGate
from app.proxy.errors import UpstreamBusy
from tests.proxy.conftest import Studio, service, token
from tests.support import live_server, wait_until

KB = 1024
DECLARED = 300 * KB
SENT = 100 * KB
GUARD = 15.0  # seconds: a hang guard only, never a timing assertion
OPEN = {"read": "zen:chat", "write": "zen:chat"}  # admin and viewer may both call


@dataclass
class Downstream:
    """Records how each upload ended; `/hold` answers only once `release` is set."""

    uploads: list[str] = field(default_factory=list)  # "complete" | "aborted"
    receiving: int = 0
    held: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path == "/upload" or path == "/early":
            if path == "/early":  # answers before reading the body, then streams
                await _start(send, 200, b"text/plain")
                await send({"type": "http.response.body", "body": b"first", "more_body": True})
            size, outcome = await self._read(receive)
            if outcome == "aborted":
                return
            if path == "/early":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await _json(send, {"received": size})
            return
        if path == "/hold":
            self.held += 1
            await self.release.wait()
            self.held -= 1
        await _json(send, {"ok": True})

    async def _read(self, receive: Receive) -> tuple[int, str]:
        self.receiving += 1
        size, outcome = 0, "complete"
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    outcome = "aborted"
                    break
                size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        finally:
            self.receiving -= 1
        self.uploads.append(outcome)
        return size, outcome


async def _start(send: Send, status: int, media: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", media)]}
    )


async def _json(send: Send, body: Any) -> None:
    await _start(send, 200, b"application/json")
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


@pytest.fixture
async def downstream() -> AsyncIterator[tuple[Downstream, str]]:
    app = Downstream()
    async with live_server(app) as url:
        try:
            yield app, url
        finally:
            app.release.set()


@pytest.fixture
def start(start_studio: Callable[..., Any]) -> Callable[..., Any]:
    """The conftest's live Studio (production's aiohttp pools)."""
    return start_studio


def upstream(url: str, **extra: Any) -> dict[str, Any]:
    return service(url, permissions=OPEN, **extra)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # False when the connection closed before the announced end


class RawClient:
    """An HTTP/1.1 client on a bare socket: it sends what the test says, when it says."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def upload(
        cls, studio: Studio, path: str, who: str, declared: int = DECLARED, sent: int = SENT
    ) -> RawClient:
        """Open a POST declaring `declared` bytes and send the first `sent` of them."""
        host = urlsplit(studio.url)
        reader, writer = await asyncio.open_connection(host.hostname, host.port)
        head = (
            f"POST /api/v1{path} HTTP/1.1\r\nHost: {host.netloc}\r\n"
            f"Authorization: Bearer {token(who)}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()
        writer.write(head + b"x" * sent)
        await writer.drain()
        return cls(reader, writer)

    async def send_rest(self, size: int) -> None:
        self.writer.write(b"x" * size)
        await self.writer.drain()

    async def answer(self) -> Answer:
        return await asyncio.wait_for(self._answer(), GUARD)

    async def _answer(self) -> Answer:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            length = int(headers["content-length"])
            body = await self.reader.read(length)
            while len(body) < length:
                more = await self.reader.read(length - len(body))
                if not more:
                    return Answer(status, headers, body, False)
                body += more
            return Answer(status, headers, body, True)
        body = await self.reader.read()  # chunked: up to the end of the connection
        return Answer(status, headers, body, body.endswith(b"0\r\n\r\n"))

    def close(self) -> None:
        self.writer.close()


async def test_stalled_uploads_get_408_and_free_the_pool(
    start: Callable[..., Any], downstream: tuple[Downstream, str]
) -> None:
    app, url = downstream
    overrides = {
        "up": upstream(
            url,
            max_connections=2,
            timeouts={"connect": 2, "read": 10, "write": 0.5, "pool": 10},
            circuit_breaker={"failure_threshold": 1, "open_seconds": 60},
        )
    }
    async with start(overrides) as studio:
        stalled = [await RawClient.upload(studio, "/up/upload", "admin") for _ in range(2)]
        try:
            # Both pooled connections are now held by a silent client.
            await wait_until(lambda: app.receiving == 2, GUARD, "both uploads downstream")
            others = await asyncio.wait_for(
                asyncio.gather(*(studio.get(f"/up/item/{i}", "viewer") for i in range(4))), GUARD
            )
            answers = [await client.answer() for client in stalled]
        finally:
            for client in stalled:
                client.close()
        assert [r.status_code for r in others] == [200] * 4
        for answer in answers:
            assert answer.status == 408
            error = orjson.loads(answer.body)
            assert error["success"] is False
            assert error["error"]["code"] == "REQUEST_TIMEOUT"
        await wait_until(lambda: app.uploads == ["aborted", "aborted"], GUARD, "aborted")
        breaker = studio.proxy.services["up"].breaker
        assert breaker.state == "closed"
        assert breaker.failures == 0
        after = await studio.get("/up/after", "viewer")
        assert after.status_code == 200


async def test_small_body_stall_is_408_before_anything_goes_downstream(
    start: Callable[..., Any], downstream: tuple[Downstream, str]
) -> None:
    app, url = downstream
    overrides = {"up": upstream(url, timeouts={"connect": 2, "read": 10, "write": 0.5, "pool": 5})}
    async with start(overrides) as studio:
        client = await RawClient.upload(studio, "/up/upload", "admin", declared=30 * KB, sent=KB)
        try:
            answer = await client.answer()
        finally:
            client.close()
        assert answer.status == 408
        assert orjson.loads(answer.body)["error"]["code"] == "REQUEST_TIMEOUT"
        assert app.uploads == []


async def test_full_pool_is_503_upstream_busy_and_not_a_breaker_failure(
    start: Callable[..., Any], downstream: tuple[Downstream, str]
) -> None:
    app, url = downstream
    overrides = {
        "up": upstream(
            url,
            max_connections=1,
            timeouts={"connect": 2, "read": 30, "write": 5, "pool": 0.2},
            circuit_breaker={"failure_threshold": 2, "open_seconds": 60},
        )
    }
    async with start(overrides) as studio:
        holder = asyncio.create_task(studio.get("/up/hold", "admin"))
        try:
            await wait_until(lambda: app.held == 1, GUARD, "the only connection is held")
            for _ in range(3):  # more than the breaker's threshold
                r = await asyncio.wait_for(studio.get("/up/x", "viewer"), GUARD)
                assert r.status_code == 503
                assert r.json()["error"]["code"] == "UPSTREAM_BUSY"
                assert int(r.headers["retry-after"]) >= 1
            breaker = studio.proxy.services["up"].breaker
            assert breaker.state == "closed"
            assert breaker.failures == 0
        finally:
            app.release.set()
        assert (await asyncio.wait_for(holder, GUARD)).status_code == 200
        assert (await studio.get("/up/x", "viewer")).status_code == 200


async def test_uploads_per_user_are_capped(
    start: Callable[..., Any], downstream: tuple[Downstream, str]
) -> None:
    app, url = downstream
    overrides = {
        "up": upstream(
            url, max_connections=8, timeouts={"connect": 2, "read": 10, "write": 10, "pool": 5}
        )
    }
    async with start(overrides) as studio:
        first = [await RawClient.upload(studio, "/up/upload", "admin") for _ in range(2)]
        try:
            await wait_until(lambda: app.receiving == 2, GUARD, "two uploads in flight")
            third = await RawClient.upload(studio, "/up/upload", "admin")
            try:
                refused = await third.answer()
            finally:
                third.close()
            assert refused.status == 429
            assert orjson.loads(refused.body)["error"]["code"] == "RATE_LIMITED"
            assert int(refused.headers["retry-after"]) >= 1
            assert app.receiving == 2 and app.uploads == []  # nothing of it went downstream

            # Another account is not affected.
            other = await RawClient.upload(studio, "/up/upload", "viewer")
            await other.send_rest(DECLARED - SENT)
            assert (await other.answer()).status == 200
            other.close()

            for client in first:
                await client.send_rest(DECLARED - SENT)
            assert [(await client.answer()).status for client in first] == [200, 200]
        finally:
            for client in first:
                client.close()

        # Released on success: the same user may upload again, and once more after leaving
        # mid-body (the slot comes back when the client is gone).
        gone = await RawClient.upload(studio, "/up/upload", "admin")
        await wait_until(lambda: app.receiving == 1, GUARD, "upload in flight")
        gone.close()
        await wait_until(lambda: app.uploads.count("aborted") == 1, GUARD, "upload aborted")
        again = [await RawClient.upload(studio, "/up/upload", "admin") for _ in range(2)]
        for client in again:
            await client.send_rest(DECLARED - SENT)
        assert [(await client.answer()).status for client in again] == [200, 200]
        for client in again:
            client.close()


async def test_stall_after_the_answer_started_closes_the_connection(
    start: Callable[..., Any], downstream: tuple[Downstream, str]
) -> None:
    app, url = downstream
    overrides = {
        "up": upstream(
            url,
            timeouts={"connect": 2, "read": 10, "write": 0.5, "pool": 5},
            circuit_breaker={"failure_threshold": 1, "open_seconds": 60},
        )
    }
    async with start(overrides) as studio:
        client = await RawClient.upload(studio, "/up/early", "admin")
        try:
            answer = await client.answer()
        finally:
            client.close()
        # The downstream answered before reading the body and the client passes that answer
        # on, so the stall can only cut the connection.
        assert answer.status == 200
        assert answer.body.startswith(b"5\r\nfirst")
        assert not answer.complete
        await wait_until(lambda: app.uploads == ["aborted"], GUARD, "aborted")
        assert studio.proxy.services["up"].breaker.failures == 0
        assert (await studio.get("/up/x", "viewer")).status_code == 200


async def test_pool_gate_hands_slots_over_in_order_and_never_loses_one() -> None:
    gate = PoolGate(1, timeout=GUARD, service="up")
    assert gate.try_acquire()
    assert not gate.try_acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await gate.wait()
        order.append(name)

    first = asyncio.create_task(take("first"))
    leaver = asyncio.create_task(take("leaver"))
    second = asyncio.create_task(take("second"))
    await asyncio.sleep(0)
    leaver.cancel()  # a waiter that goes away (its client left) is skipped
    await asyncio.gather(leaver, return_exceptions=True)
    gate.release()
    await first
    gate.release()
    await second
    assert order == ["first", "second"]
    gate.release()
    assert gate.in_use == 0 and gate.try_acquire()


async def test_pool_gate_wait_ends_as_upstream_busy() -> None:
    gate = PoolGate(1, timeout=0.01, service="up")
    assert gate.try_acquire()
    with pytest.raises(UpstreamBusy) as caught:
        await asyncio.wait_for(gate.wait(), GUARD)
    assert caught.value.headers["Retry-After"] == "1"
    assert caught.value.details["service"] == "up"
    gate.release()
    assert gate.in_use == 0
