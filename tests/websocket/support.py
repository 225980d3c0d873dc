"""A real downstream WebSocket server (aiohttp, port 0) and Studio with the relay in front of
it under uvicorn: Studio's own app for HTTP (sign-in, logout), the relay for `websocket` scopes
under `/api/v1/zen/`, both on one lifespan state."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import WSMsgType, web
from starlette.types import Receive, Scope, Send

from app.core.config import Settings
from app.identity.dependencies import IDENTIFY
from app.main import create_app
from app.proxy.breaker import CircuitBreaker
from app.websocket.downstream import Target
from app.websocket.front import Front, build_front, running
from app.websocket.relay import relay
from tests.support import StateApp, live_server

PREFIX = "/api/v1/zen"
PERMISSION = "zen:chat"
SERVICE_AUTH = b"Basic c3ZjOnN2Yy1wYXNz"  # svc:svc-pass
PASSWORD = "websocket-test-password"


@dataclass(eq=False)
class Downstream:
    """The fake service: what it saw, and how its sockets ended."""

    url: str = ""
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    closes: asyncio.Queue[tuple[int | None, str]] = field(default_factory=asyncio.Queue)
    opened: asyncio.Queue[web.WebSocketResponse] = field(default_factory=asyncio.Queue)


def downstream_app(seen: Downstream) -> web.Application:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"detail": "no"}, status=403)

    async def echo(request: web.Request) -> web.WebSocketResponse:
        seen.headers.append(dict(request.headers))
        seen.paths.append(request.path_qs)
        ws = web.WebSocketResponse(
            protocols=("chat.v2", "chat.v1"), max_msg_size=8 * 1024 * 1024, heartbeat=None
        )
        await ws.prepare(request)
        await seen.opened.put(ws)
        if request.path.endswith("/push"):  # a service that speaks first
            for i in range(3):
                await ws.send_str(f"push {i}")
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                if msg.data == "drop":  # the service's connection just goes
                    assert request.transport is not None
                    request.transport.close()
                    break
                if msg.data.startswith("close:"):
                    _, code, reason = msg.data.split(":", 2)
                    await ws.close(code=int(code), message=reason.encode())
                    break
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        await seen.closes.put((ws.close_code, getattr(ws, "_close_reason", "")))
        return ws

    app = web.Application()
    app.router.add_get("/refuse", refuse)
    app.router.add_get("/{tail:.*}", echo)
    return app


@asynccontextmanager
async def serve_downstream() -> AsyncIterator[Downstream]:
    seen = Downstream()
    runner = web.AppRunner(downstream_app(seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    seen.url = f"ws://127.0.0.1:{port}"
    try:
        yield seen
    finally:
        await runner.cleanup()


def make_target(url: str, **limits: Any) -> Target:
    async def credentials() -> bytes:
        return SERVICE_AUTH

    host = url.split("://", 1)[1]
    values: dict[str, Any] = {
        "service": "zen",
        "url": url,
        "host_header": host.encode(),
        "breaker": CircuitBreaker("zen", 3, 30),
        "credentials": credentials,
        "max_message_bytes": 2 * 1024 * 1024,
        "idle_timeout": 60.0,
        "connect_timeout": 5.0,
        "ping_interval": 20.0,
    }
    values.update(limits)
    return Target(**values)


class Gateway:
    """Studio for HTTP; the relay for WebSocket upgrades under `PREFIX`."""

    def __init__(self, studio: Any, front: Front, target: Target) -> None:
        self.studio = studio
        self.front = front
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # Studio's lifespan runs in the fixture
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket" and scope["path"].startswith(PREFIX + "/"):
            tail = scope["path"][len(PREFIX) :]
            await relay(
                scope,
                receive,
                send,
                front=self.front,
                target=self.target,
                permission=PERMISSION,
                tail=tail,
            )
            return
        await self.studio(scope, receive, send)


@dataclass(eq=False)
class Instance:
    url: str
    state: dict[str, Any]
    front: Front
    target: Target

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://", 1) + PREFIX


@asynccontextmanager
async def studio(
    settings: Settings, target: Target, per_user_cap: int = 3
) -> AsyncIterator[Instance]:
    """Studio plus the relay under uvicorn on loopback, port 0."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as lifespan_state:
        state: dict[str, Any] = dict(lifespan_state or {})
        front = build_front(
            store=state["session_store"],
            redis=state["redis"],
            identify=state[IDENTIFY],
            cookie_policy=state["cookie_policy"],
            key_prefix=settings.redis_key_prefix,
            per_user_cap=per_user_cap,
        )
        gateway = StateApp(Gateway(app, front, target), state)
        async with running(front), live_server(gateway) as url:
            yield Instance(url, state, front, target)


async def sign_up(http: httpx.AsyncClient, mode: str = "bearer") -> dict[str, Any]:
    """A new account signed in: its login result (tokens or cookies set on `http`)."""
    email = f"ws-{uuid.uuid4().hex[:12]}@example.com"
    created = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert created.status_code == 201, created.text
    login = await http.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD, "mode": mode}
    )
    assert login.status_code == 200, login.text
    result: dict[str, Any] = login.json()["result"]
    return result
