"""Header values travel byte for byte in both directions.

A raw socket downstream records the request exactly as it arrived, and a raw socket client
reads the answer exactly as Studio sent it: UTF-8 values (Studio's own `X-User-Email` for
`jürgen@example.com`) and values that are not UTF-8 at all (obs-text, RFC 9110 §5.5).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.identity.principal import Principal
from tests.proxy.conftest import PRINCIPALS, token
from tests.proxy.test_stalled_uploads import GUARD, start, upstream

__all__ = ["start"]  # the fixture

CLIENT_VALUE = b"caf\xc3\xa9 \xff\xfe\x80 \xe6\x97\xa5"  # UTF-8, then bytes that are not
DOWNSTREAM_VALUE = b"\xff\xfe caf\xc3\xa9 j\xc3\xbcrgen"


class RawDownstream:
    """Keeps each request's header block as received; answers with raw header bytes."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                b"X-Raw: " + DOWNSTREAM_VALUE + b"\r\n\r\n{}"
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def raw_downstream() -> AsyncIterator[tuple[RawDownstream, str]]:
    app = RawDownstream()
    server = await asyncio.start_server(app.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _exchange(url: str, request: bytes) -> bytes:
    """Send `request` on a bare socket and return the answer's header block."""
    host = urlsplit(url)
    reader, writer = await asyncio.open_connection(host.hostname, host.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD)
    finally:
        writer.close()


async def test_header_bytes_arrive_unchanged_both_ways(
    start: Callable[..., Any],
    raw_downstream: tuple[RawDownstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    downstream, url = raw_downstream
    monkeypatch.setitem(
        PRINCIPALS,
        "jurgen",
        Principal("u-j", "jürgen@example.com", "s-j", ("viewer",), frozenset({"zen:chat"})),
    )
    async with start({"raw": upstream(url)}) as studio:
        host = urlsplit(studio.url).netloc.encode()
        answer = await _exchange(
            studio.url,
            b"GET /api/v1/raw/x HTTP/1.1\r\nHost: " + host + b"\r\n"
            b"Authorization: Bearer " + token("jurgen").encode() + b"\r\n"
            b"X-Custom: " + CLIENT_VALUE + b"\r\n\r\n",
        )
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"\r\nx-raw: " + DOWNSTREAM_VALUE + b"\r\n" in answer.lower()
    [sent] = downstream.requests
    lines = sent.split(b"\r\n")
    assert b"x-custom: " + CLIENT_VALUE in [line.lower() for line in lines]
    assert b"x-user-email: j\xc3\xbcrgen@example.com" in [line.lower() for line in lines]
