"""The corked HTTP protocol: one write per small response, streams not held back, order kept."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from app.runtime.protocol import (
    DIRECT_WRITE_BYTES,
    HTTP_PROTOCOL,
    CorkedHttpToolsProtocol,
    CorkedTransport,
)
from tests.support import bound_port

BODY = b'{"success":true,"message":"ok","result":{"n":1}}'
GET = b"GET / HTTP/1.1\r\nHost: studio\r\n\r\n"


class SocketSide:
    """The transport under the cork: records what reached the socket, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.closing = False

    @property
    def writes(self) -> list[bytes]:
        return [bytes(data) for kind, data in self.events if kind == "write"]

    def write(self, data: Any) -> None:
        self.events.append(("write", data))

    def close(self) -> None:
        self.closing = True
        self.events.append(("close", None))

    def abort(self) -> None:
        self.closing = True
        self.events.append(("abort", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def reply(*messages: dict[str, Any]) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    return app


def fixed(body: bytes, *extra: tuple[bytes, bytes]) -> Callable[..., Awaitable[None]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return reply(
        {"type": "http.response.start", "status": 200, "headers": [*headers, *extra]},
        {"type": "http.response.body", "body": body},
    )


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., tuple[CorkedHttpToolsProtocol, SocketSide]]]:
    made: list[CorkedHttpToolsProtocol] = []

    def make(app: Callable[..., Awaitable[None]]) -> tuple[CorkedHttpToolsProtocol, SocketSide]:
        config = uvicorn.Config(app, log_config=None, lifespan="off", proxy_headers=False)
        protocol = CorkedHttpToolsProtocol(
            config, ServerState(), {}, _loop=asyncio.get_running_loop()
        )
        side = SocketSide()
        protocol.connection_made(side)  # type: ignore[arg-type]
        made.append(protocol)
        return protocol, side

    yield make
    for protocol in made:
        protocol.connection_lost(None)


async def settle(steps: int = 20) -> None:
    for _ in range(steps):
        await asyncio.sleep(0)


async def test_a_small_response_reaches_the_socket_in_one_write(connect: Any) -> None:
    protocol, side = connect(fixed(BODY))
    protocol.data_received(GET)
    await settle()
    assert len(side.writes) == 1
    head, _, body = side.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: %d" % len(BODY) in head
    assert body == BODY


async def test_a_late_stream_chunk_does_not_hold_the_head_back(connect: Any) -> None:
    gate = asyncio.Event()

    async def sse(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await gate.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol, side = connect(sse)
    protocol.data_received(GET)
    await settle()
    assert len(side.writes) == 1  # the head alone, while the app waits for its first event
    assert side.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in side.writes[0]
    gate.set()
    await settle()
    # The event and the end of the stream were sent in one step: they leave together.
    assert side.writes[1:] == [b"9\r\ndata: 1\n\n\r\n0\r\n\r\n"]


async def test_writes_leave_before_the_connection_closes(connect: Any) -> None:
    protocol, side = connect(fixed(BODY, (b"connection", b"close")))
    protocol.data_received(GET)
    await settle()
    assert [kind for kind, _ in side.events] == ["write", "close"]
    assert side.writes[0].endswith(BODY)


async def test_a_large_body_is_written_as_is_after_the_head(connect: Any) -> None:
    big = b"x" * (DIRECT_WRITE_BYTES + 1)
    protocol, side = connect(fixed(big))
    protocol.data_received(GET)
    await settle()
    assert len(side.writes) == 2
    assert side.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert side.events[1][1] is big  # not copied into a joined buffer


async def test_pipelined_requests_are_answered_in_order(connect: Any) -> None:
    async def echo_path(scope: Scope, receive: Receive, send: Send) -> None:
        body = scope["path"].encode()
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    protocol, side = connect(echo_path)
    protocol.data_received(
        b"GET /first HTTP/1.1\r\nHost: s\r\n\r\nGET /second HTTP/1.1\r\nHost: s\r\n\r\n"
    )
    await settle(40)
    wire = b"".join(side.writes)
    assert wire.count(b"HTTP/1.1 200 OK") == 2
    assert wire.index(b"/first") < wire.index(b"/second")
    assert wire.endswith(b"/second")


async def test_a_head_request_gets_its_head_alone(connect: Any) -> None:
    protocol, side = connect(fixed(BODY))
    protocol.data_received(b"HEAD / HTTP/1.1\r\nHost: studio\r\n\r\n")
    await settle()
    assert len(side.writes) == 1
    assert side.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert side.writes[0].endswith(b"\r\n\r\n")


async def test_writes_to_a_lost_connection_are_dropped() -> None:
    loop = asyncio.get_running_loop()
    side = SocketSide()
    cork = CorkedTransport(side, loop)  # type: ignore[arg-type]
    cork.write(b"late")
    side.closing = True  # the peer went away before the end of the step
    await settle(2)
    assert side.writes == []


async def test_abort_drops_what_waits_and_buffer_size_counts_it() -> None:
    loop = asyncio.get_running_loop()
    side = SocketSide()
    cork = CorkedTransport(side, loop)  # type: ignore[arg-type]
    cork.write(bytearray(b"abc"))
    cork.writelines([b"de", b""])
    assert cork.get_write_buffer_size() == 5
    cork.abort()
    await settle(2)
    assert [kind for kind, _ in side.events] == ["abort"]


@pytest.fixture
def uvloop_server() -> Iterator[tuple[str, threading.Event]]:
    """A real uvicorn on uvloop with Studio's protocol, in a thread of its own; its stream
    sends a second chunk once the event is set."""
    first_chunk_seen = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first;", "more_body": True})
            for _ in range(500):  # the rest only once the client has the first chunk
                if first_chunk_seen.is_set():
                    break
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b"second;"})
            return
        await fixed(BODY)(scope, receive, send)

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, loop="uvloop", http=HTTP_PROTOCOL, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{bound_port(server)}", first_chunk_seen
    finally:
        server.should_exit = True
        thread.join(10)


async def test_served_by_uvicorn_on_uvloop(uvloop_server: tuple[str, threading.Event]) -> None:
    url, first_chunk_seen = uvloop_server
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        for _ in range(3):  # one keep-alive connection, several answers
            response = await client.get("/")
            assert response.status_code == 200
            assert response.content == BODY
        chunks = []
        async with client.stream("GET", "/stream") as stream:
            assert stream.status_code == 200
            async for chunk in stream.aiter_raw():
                chunks.append(chunk)
                first_chunk_seen.set()
        # The first chunk reached the client while the app was still waiting to send more.
        assert chunks[0] == b"first;"
        assert b"".join(chunks) == b"first;second;"
