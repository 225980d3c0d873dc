"""The Python ceiling: a bare ASGI app forwarding with one pooled aiohttp session, no auth.

No framework, no middleware, no checks: the least a Python process under uvicorn can do to
proxy a GET. Studio's proxied GET is reported as a ratio to it. `UPSTREAM` is the origin.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from starlette.types import Receive, Scope, Send

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8080")
_session: aiohttp.ClientSession | None = None


async def _lifespan(receive: Receive, send: Send) -> None:
    global _session
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _session = aiohttp.ClientSession(
                UPSTREAM, connector=aiohttp.TCPConnector(limit=100), auto_decompress=False
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert _session is not None
    async with _session.request(scope["method"], scope["path"]) as upstream:
        body = await upstream.read()
        headers: list[Any] = [
            (b"content-type", upstream.headers.get("content-type", "").encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
