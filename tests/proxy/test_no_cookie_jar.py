"""The aiohttp client keeps no cookie jar: a downstream's `Set-Cookie` answered to one user
never rides on the next user's request (a real loopback downstream records each request)."""

from __future__ import annotations

import asyncio

import pytest

from app.proxy.aiohttp_client import AiohttpUpstreamClient

# A host name, not an IP literal: aiohttp's default jar ignores cookies of IP hosts, so only a
# name would show a jar that keeps them.
HOSTS = ("localhost", "127.0.0.1")


@pytest.mark.parametrize("host", HOSTS)
async def test_set_cookie_is_not_replayed_for_the_next_user(host: str) -> None:
    heads: list[bytes] = []

    async def downstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                heads.append(head)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                    b"Set-Cookie: session=alice-secret; Path=/\r\n"
                    b"Set-Cookie: plain=1\r\n\r\nok"
                )
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(downstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AiohttpUpstreamClient(
        scheme="http",
        host=host,
        port=port,
        max_connections=4,
        connect=5,
        read=5,
        write=5,
        pool=5,
    )
    try:
        for user in (b"alice", b"bob"):
            response = await client.send(
                b"GET", b"/me", [(b"host", b"svc"), (b"x-user", user)], None
            )
            assert response.status == 200
            assert b"".join([c async for c in response.body()]) == b"ok"
            await response.aclose()
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert len(heads) == 2
    bob = heads[1].lower()
    assert b"x-user: bob" in bob
    assert b"cookie" not in bob
    assert b"alice-secret" not in bob
