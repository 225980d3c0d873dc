"""Helpers shared by tests: an ASGI wrapper that provides lifespan state, a live server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.config import Settings
from app.runtime.protocol import http_protocol
from app.websocket.server import WS_PROTOCOL


class StateApp:
    """Give each request a copy of the lifespan state, as a real ASGI server does."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "state": dict(self.state)}
        await self.app(scope, receive, send)


def free_port() -> int:
    """A port free right now. Racy (another process may take it before it is bound): only for a
    port that must be known before the process that binds it starts, or one nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections while the context lasts: bound, never listening,
    so no other server can take it meanwhile (a downstream that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def bound_port(server: uvicorn.Server) -> int:
    """The port a started uvicorn server listens on (its config may say 0)."""
    return int(server.servers[0].sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def live_server(app: ASGIApp, port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on loopback inside the test's event loop; yields its base
    URL. The default port 0 lets the kernel pick the port as it binds: no race for it."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{bound_port(server)}"
    finally:
        server.should_exit = True
        await task


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll `condition` on the event loop until it holds; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serve_studio(app: Any, settings: Settings) -> AsyncIterator[str]:
    """Like `live_server`, but with the HTTP and WebSocket protocols `studio serve` uses, on a
    socket bound to port 0 before uvicorn starts (no other process can take the port in
    between), and uvicorn does not rewrite the client address from X-Forwarded-For (its default
    trusts loopback), so Studio's own rule is what is tested."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=http_protocol(settings.runtime_corked_writes),  # as `studio serve`
            ws=WS_PROTOCOL,
            log_config=None,
            lifespan="on",
            proxy_headers=False,
            server_header=False,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            await task
    finally:
        sock.close()
