"""WebSockets through Studio itself (create_app under uvicorn): the registry's `websocket: true`
decides which upgrades are relayed; everything else is an envelope answer before the upgrade."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.core.config import Settings
from app.core.logging import configure_logging
from app.main import create_app
from app.websocket.server import WS_PROTOCOL
from tests.support import serve_studio, wait_until
from tests.websocket.support import Downstream, serve_downstream, sign_up

TIMEOUT = 10.0


def registry(downstream: Downstream) -> str:
    base = downstream.url.replace("ws://", "http://", 1)
    return f"""
services:
  zen:
    base_url: {base}
    mode: wildcard
    auth: {{type: basic, username_env: WS_SERVICE_USER, password_env: WS_SERVICE_PASSWORD}}
    permissions: {{read: "zen:chat", write: "zen:chat"}}
    websocket: true
    websocket_limits: {{max_message_bytes: 2097152, idle_timeout: 60}}
  plain:
    base_url: {base}
    mode: wildcard
    permissions: {{read: "zen:chat", write: "zen:chat"}}
  listed:
    base_url: {base}/base
    mode: explicit
    permissions: {{read: "nexus:read", write: "nexus:write"}}
    routes:
      - {{method: GET, path: "/live/{{job}}", websocket: true}}
      - {{method: GET, path: "/status"}}
dashboard: {{sources: []}}
"""


@pytest.fixture
async def downstream() -> AsyncIterator[Downstream]:
    async with serve_downstream() as seen:
        yield seen


@pytest.fixture
def ws_settings(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    downstream: Downstream,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Settings]:
    """Settings for a Studio whose registry is `registry(downstream)`, with `overrides`."""
    monkeypatch.setenv("WS_SERVICE_USER", "svc")
    monkeypatch.setenv("WS_SERVICE_PASSWORD", "svc-secret")
    path = tmp_path / "services.yaml"
    path.write_text(registry(downstream))
    overlay = tmp_path / "overlay.yml"
    overlay.write_text("{}\n")

    def build(**overrides: object) -> Settings:
        return make_settings(service_config_path=path, service_overlay_path=overlay, **overrides)

    return build


@pytest.fixture
async def studio_url(ws_settings: Callable[..., Settings]) -> AsyncIterator[str]:
    settings = ws_settings()
    async with serve_studio(create_app(settings), settings) as url:
        yield url


def ws_url(url: str, path: str) -> str:
    return url.replace("http://", "ws://", 1) + "/api/v1" + path


async def refused(url: str, headers: dict[str, str]) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as exc:
        await connect(url, additional_headers=headers)
    body = orjson.loads(exc.value.response.body or b"{}")
    assert set(body) == {"success", "message", "error", "result"}
    return exc.value.response.status_code, body["error"]["code"]


async def test_registry_decides_which_upgrades_are_relayed(
    studio_url: str, downstream: Downstream
) -> None:
    async with httpx.AsyncClient(base_url=studio_url) as http:
        tokens = await sign_up(http)
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        async with connect(
            ws_url(studio_url, "/zen/chat?x=1"),
            additional_headers=auth,
            subprotocols=["chat.v2"],  # type: ignore[list-item]
        ) as ws:
            assert ws.subprotocol == "chat.v2"
            await ws.send("through studio")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "through studio"
        seen = {k.lower(): v for k, v in downstream.headers[-1].items()}
        assert seen["authorization"] == "Basic " + base64.b64encode(b"svc:svc-secret").decode()
        assert downstream.paths[-1] == "/chat?x=1"

        async with connect(ws_url(studio_url, "/listed/live/7"), additional_headers=auth) as ws:
            await ws.send(b"\x01")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x01"
        assert downstream.paths[-1] == "/base/live/7"

        count = len(downstream.paths)
        assert await refused(ws_url(studio_url, "/plain/chat"), auth) == (404, "ROUTE_NOT_FOUND")
        assert await refused(ws_url(studio_url, "/listed/status"), auth) == (
            404,
            "ROUTE_NOT_FOUND",
        )
        assert await refused(ws_url(studio_url, "/nowhere/x"), auth) == (404, "SERVICE_NOT_FOUND")
        assert await refused(ws_url(studio_url, "/zen/a/%2e%2e/b"), auth) == (400, "INVALID_PATH")
        assert await refused(ws_url(studio_url, "/zen/chat"), {}) == (401, "UNAUTHORIZED")
        assert len(downstream.paths) == count  # none of these reached the service

        # Logout ends the session: the socket closes with 4401.
        ws = await connect(ws_url(studio_url, "/zen/chat"), additional_headers=auth)
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ping"
        assert (await http.post("/api/v1/auth/logout", headers=auth)).status_code == 200

        async def drain() -> None:
            while True:
                await ws.recv()

        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(drain(), TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (4401, "session ended")


async def test_shutdown_sends_1001_to_every_socket(
    ws_settings: Callable[..., Settings], downstream: Downstream
) -> None:
    settings = ws_settings()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, ws=WS_PROTOCOL, log_config=None
    )
    # After create_app, whose logging set-up replaces uvicorn's handlers.
    lines: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(capture)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done()
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        async with httpx.AsyncClient(base_url=url) as http:
            tokens = await sign_up(http)
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        with pytest.raises(InvalidStatus):  # refused, and kept out of uvicorn's log line
            await connect(ws_url(url, "/zen/chat?access_token=query-secret-value"))
        assert any("WebSocket /api/v1/zen/chat" in line for line in lines), lines
        assert not any("query-secret-value" in line for line in lines)
        ws = await connect(ws_url(url, "/zen/chat"), additional_headers=auth)
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hello"
        server.should_exit = True

        async def drain() -> None:
            while True:
                await ws.recv()

        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(drain(), TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (1001, "server shutting down")
        code, _ = await asyncio.wait_for(downstream.closes.get(), TIMEOUT)
        assert code == 1001
    finally:
        uvicorn_log.removeHandler(capture)
        server.should_exit = True
        await asyncio.wait_for(serving, TIMEOUT * 3)


async def test_an_upgrade_states_the_client_a_trusted_proxy_named(
    ws_settings: Callable[..., Settings], downstream: Downstream
) -> None:
    """Behind a trusted load balancer, the service hears the real client and the request id,
    as for HTTP; the client's own identity headers never pass."""
    settings = ws_settings(trusted_proxies=["127.0.0.1/32"])
    async with (
        serve_studio(create_app(settings), settings) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        tokens = await sign_up(http)
        headers = {
            "Authorization": f"Bearer {tokens['access_token']}",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "studio.example.com",
            "X-Request-ID": "ws-upgrade-1",
            "X-User-Id": "someone-else",
        }
        async with connect(ws_url(url, "/zen/chat"), additional_headers=headers) as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hello"
    seen = {k.lower(): v for k, v in downstream.headers[-1].items()}
    assert seen["x-forwarded-for"] == "203.0.113.7"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == "studio.example.com"
    assert seen["x-request-id"] == "ws-upgrade-1"
    assert seen["x-user-id"] == tokens["user"]["id"]


async def test_an_upgrade_anywhere_else_is_an_envelope_404(
    studio_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Under the API prefix, a path no service claims is the proxy's answer.
    assert await refused(ws_url(studio_url, "/auth/me"), {}) == (404, "SERVICE_NOT_FOUND")
    root = studio_url.replace("http://", "ws://", 1)
    for path in ("/metrics", "/health", "/docs", "/no/such/thing"):
        assert await refused(root + path, {}) == (404, "NOT_FOUND"), path
    # A refusal is a complete answer: the server logs no failed handshake for it.
    assert not [r for r in caplog.records if "without completing handshake" in r.getMessage()]


async def test_one_access_line_per_socket(
    ws_settings: Callable[..., Settings],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = ws_settings(log_json=True, log_dir=tmp_path / "logs")
    try:
        async with (
            serve_studio(create_app(settings), settings) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            tokens = await sign_up(http)
            auth = {"Authorization": f"Bearer {tokens['access_token']}", "X-Request-ID": "ws-log-1"}
            async with connect(ws_url(url, "/zen/chat"), additional_headers=auth) as ws:
                for text in ("one", "two"):
                    await ws.send(text)
                    assert await asyncio.wait_for(ws.recv(), TIMEOUT) == text
                await ws.close(1000, "done")
            # The relay writes the line once it has ended the socket: wait for it.
            err: list[str] = []

            def logged() -> bool:
                err.append(capfd.readouterr().err)
                return '"message":"websocket"' in "".join(err).replace(" ", "")

            await wait_until(logged, TIMEOUT, "the socket's access line")
    finally:
        configure_logging(make_settings())  # back to the suite's console format
    lines = [orjson.loads(s) for s in "".join(err).splitlines() if s.startswith("{")]
    sockets = [entry for entry in lines if entry.get("message") == "websocket"]
    assert len(sockets) == 1, sockets
    entry = sockets[0]
    assert entry["request_id"] == "ws-log-1" and entry["path"] == "/api/v1/zen/chat"
    assert entry["service"] == "zen" and entry["user_id"] == tokens["user"]["id"]
    assert entry["close_code"] == 1000 and isinstance(entry["duration_ms"], float)
    assert entry["messages_in"] == 2 and entry["messages_out"] == 2
    assert all(tokens["access_token"] not in orjson.dumps(e).decode() for e in lines)
