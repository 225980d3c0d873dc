"""The aiohttp `UpstreamClient` on its own: the default, its errors, the bytes it sends. (The
live suites run every service on it: the conftest builds clients with production's factory.)"""

from __future__ import annotations

import pytest

from app.proxy import state as proxy_state
from app.proxy.aiohttp_client import AiohttpUpstreamClient
from app.proxy.client import UpstreamConnectError, UpstreamTimeoutError
from app.registry.schema import ServiceConfig
from tests.support import refusing_port


def _config(url: str, **timeouts: float) -> ServiceConfig:
    return ServiceConfig.model_validate(
        {
            "base_url": url,
            "mode": "wildcard",
            "auth": {"type": "none"},
            "permissions": {"read": "svc:read", "write": "svc:write"},
            "timeouts": {"connect": 1, "read": 1, "write": 1, "pool": 1, **timeouts},
        }
    )


def test_default_client_is_aiohttp() -> None:
    client = proxy_state.default_client("svc", _config("http://127.0.0.1:1"))
    assert isinstance(client, AiohttpUpstreamClient)


async def test_connect_refused_is_a_connect_error() -> None:
    with refusing_port() as port:
        client = AiohttpUpstreamClient.for_service(_config(f"http://127.0.0.1:{port}"))
        try:
            with pytest.raises(UpstreamConnectError):
                await client.send(b"GET", b"/x", [(b"host", b"x")], None)
        finally:
            await client.aclose()


async def test_read_timeout_is_a_timeout_error() -> None:
    import asyncio

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AiohttpUpstreamClient.for_service(_config(f"http://127.0.0.1:{port}", read=0.2))
    try:
        with pytest.raises(UpstreamTimeoutError):
            await client.send(b"GET", b"/x", [(b"host", b"x")], None)
    finally:
        await client.aclose()
        server.close()


async def test_sends_only_the_given_headers_and_raw_target() -> None:
    import asyncio

    seen: list[bytes] = []

    async def capture(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=b\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(capture, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AiohttpUpstreamClient.for_service(_config(f"http://127.0.0.1:{port}"))
    try:
        response = await client.send(
            b"GET", b"/a%2Fb/%7E?x=%20&y=1", [(b"host", b"svc"), (b"x-one", b"1")], None
        )
        assert response.status == 200
        assert (b"Set-Cookie", b"a=b") in response.headers
        assert b"".join([c async for c in response.body()]) == b"ok"
        await response.aclose()
        request = seen[0].decode()
        assert request.startswith("GET /a%2Fb/%7E?x=%20&y=1 HTTP/1.1\r\n")
        names = sorted(line.split(":")[0].lower() for line in request.split("\r\n")[1:] if line)
        assert names == ["host", "x-one"]
    finally:
        await client.aclose()
        server.close()
