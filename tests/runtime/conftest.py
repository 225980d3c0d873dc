"""Real Studio apps served by uvicorn, to compare their raw answers with a speed-up on and off."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from app.core.config import Settings
from app.main import create_app
from app.runtime.protocol import http_protocol
from tests.support import bound_port

API = "/api/v1"
SERVICE = "echo"  # the registry service of these tests (wildcard, no downstream auth)
JSON_BODY = orjson.dumps({"data": "a" * 300, "n": 1})
SSE_EVENTS = 3
SSE_INTERVAL = 0.03  # far enough apart that each event is its own chunk all the way


@dataclass
class Downstream:
    """A raw-ASGI downstream with deterministic answers; records the headers it receives."""

    seen: list[dict[bytes, bytes]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.seen.append(dict(scope["headers"]))
        if scope["path"] == "/json":
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(JSON_BODY)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": JSON_BODY})
            return
        if scope["path"] == "/sse":
            headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for i in range(SSE_EVENTS):
                if i:
                    await asyncio.sleep(SSE_INTERVAL)
                event = b'id: %d\nevent: tick\ndata: {"i":%d}\n\n' % (i, i)
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b'{"detail":"no such path"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serve(
    app: Any, http: str = "httptools", lifespan: Literal["on", "off"] = "on"
) -> AsyncIterator[Any]:
    """uvicorn in this event loop, configured as `studio serve` runs it; yields the server."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,  # the kernel picks it as uvicorn binds: no race for it
        http=http,
        lifespan=lifespan,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        access_log=False,
        log_config=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await task


@dataclass
class Running:
    """One Studio served by uvicorn."""

    app: Any
    server: uvicorn.Server

    @property
    def port(self) -> int:
        return bound_port(self.server)


@contextlib.asynccontextmanager
async def studio(settings: Settings, tracer_provider: Any = None) -> AsyncIterator[Running]:
    """Studio for these settings, served with the protocol `studio serve` would pick."""
    app = create_app(settings, tracer_provider=tracer_provider)
    async with serve(app, http=http_protocol(settings.runtime_corked_writes)) as server:
        yield Running(app, server)


@pytest.fixture(scope="session")
async def downstream() -> AsyncIterator[tuple[Downstream, int]]:
    fake = Downstream()
    async with serve(fake, lifespan="off") as server:
        yield fake, bound_port(server)


@pytest.fixture
def runtime_settings(
    make_settings: Callable[..., Settings], downstream: tuple[Downstream, int], tmp_path: Path
) -> Settings:
    """Settings whose registry has one service, `echo`, in front of the downstream."""
    _, port = downstream
    (tmp_path / "services.yaml").write_text(
        f"services:\n  {SERVICE}:\n    base_url: http://127.0.0.1:{port}\n    mode: wildcard\n"
        "    auth: {type: none}\n"
        '    permissions: {read: "nexus:read", write: "nexus:write"}\n'
    )
    (tmp_path / "overlay.yaml").write_text("services: {}\n")
    return make_settings(
        service_config_path=tmp_path / "services.yaml",
        service_overlay_path=tmp_path / "overlay.yaml",
    )


async def sign_in(port: int) -> str:
    """Register a viewer (it may read `echo`) and log in; returns the access token."""
    account = {"email": f"runtime-{uuid.uuid4().hex[:10]}@example.com", "password": "runtime-pw"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        created = await http.post(f"{API}/auth/register", json=account)
        assert created.status_code == 201, created.text
        login = await http.post(f"{API}/auth/login", json=account)
        assert login.status_code == 200, login.text
        return str(login.json()["result"]["access_token"])


def requests(token: str) -> dict[str, bytes]:
    """The raw requests compared, each with a fixed request id (error bodies carry it)."""

    def get(path: str, name: str, auth: bool = True) -> bytes:
        lines = [f"GET {path} HTTP/1.1", "Host: studio", f"X-Request-ID: runtime-{name}"]
        if auth:
            lines.append(f"Authorization: Bearer {token}")
        return ("\r\n".join(lines) + "\r\n").encode()

    return {
        "enveloped": get(f"{API}/auth/me", "enveloped"),
        "error": get(f"{API}/auth/me", "error", auth=False),
        "proxied": get(f"{API}/{SERVICE}/json", "proxied"),
        "sse": get(f"{API}/{SERVICE}/sse", "sse"),
        "not_found": get("/nowhere", "not-found", auth=False),
    }


async def exchange(port: int, head: bytes) -> bytes:
    """Send the request twice on one connection (kept alive, then closing); every byte back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + b"\r\n")
        await writer.drain()
        first = await asyncio.wait_for(read_response(reader), 10)
        writer.write(head + b"Connection: close\r\n\r\n")
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10)  # to the server's close
        return first + rest
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One response, framed by Content-Length or chunked encoding, exactly as received."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)\r$", head)
    if length:
        return head + await reader.readexactly(int(length[1]))
    assert re.search(rb"(?im)^transfer-encoding: *chunked\r$", head), head
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        body += size_line + await reader.readexactly(size + 2)
        if size == 0:
            return head + body


def without_date(raw: bytes) -> bytes:
    """The bytes as they were, less each `date` header line (the clock's, not the app's)."""
    return re.sub(rb"(?im)^date: [^\r\n]*\r\n", b"", raw)


async def answers(running: Running, token: str) -> dict[str, bytes]:
    """Every compared request's raw answers (twice each), dates removed."""
    return {
        name: without_date(await exchange(running.port, head))
        for name, head in requests(token).items()
    }
