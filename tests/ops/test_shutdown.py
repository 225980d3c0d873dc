"""SIGTERM drains: an SSE stream in flight finishes, new connections are refused."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from tests.conftest import ROOT, RUN_ID, TEST_SECRET
from tests.support import free_port, live_server

pytestmark = [pytest.mark.slow, pytest.mark.services]


async def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(200):
            if proc.poll() is not None:
                raise AssertionError(f"studio exited early with {proc.returncode}")
            try:
                if (await c.get(f"{base}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("studio did not start")


EVENTS = 8


class GatedStream:
    """A downstream whose event stream sends one event, then the rest once `gate` is set: the
    stream is in flight for exactly as long as the test needs, however slow the machine."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"].endswith("/health"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b'{"status": "ok"}'})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        for i in range(EVENTS):
            if i == 1:
                await self.gate.wait()
            body = f"event: tick\ndata: {i}\n\n".encode()
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _refused(base: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as fresh:
            await fresh.get(f"{base}/health")
    except httpx.TransportError:
        return True
    return False


async def test_sigterm_lets_the_stream_finish_and_refuses_new_work(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    zen = GatedStream()
    async with live_server(zen) as zen_url:
        # `studio serve` takes its port on the command line: picked before it binds.
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS"))},
            "ENVIRONMENT": "dev",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"studio-test-{RUN_ID}:sigterm:",
            "JWT_SECRET_KEY": TEST_SECRET,
            "LOG_DIR": str(tmp_path / "logs"),
            "SERVICE_CONFIG_PATH": str(ROOT / "config/services.yaml"),
            "SERVICE_OVERLAY_PATH": str(ROOT / "config/local.yml"),
            "ZEN_URL": zen_url,
            "ZEN_SERVICE_USER": "svc",
            "ZEN_SERVICE_PASSWORD": "pw",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await _wait_up(base, proc)
            async with httpx.AsyncClient(base_url=base, timeout=10) as c:
                email = f"sigterm-{uuid.uuid4().hex[:8]}@example.com"
                await c.post(
                    "/api/v1/auth/register", json={"email": email, "password": "password-1"}
                )
                login = await c.post(
                    "/api/v1/auth/login", json={"email": email, "password": "password-1"}
                )
                token = login.json()["result"]["access_token"]
                events: list[bytes] = []
                refused = False
                async with c.stream(
                    "GET", "/api/v1/zen/sse", headers={"Authorization": f"Bearer {token}"}
                ) as stream:
                    assert stream.status_code == 200
                    async for chunk in stream.aiter_raw():
                        events.extend(e for e in chunk.split(b"\n\n") if e.strip())
                        if len(events) == 1 and not zen.gate.is_set():
                            proc.send_signal(signal.SIGTERM)
                            # While the stream is held open, new connections become refused.
                            for _ in range(100):
                                refused = await _refused(base)
                                if refused:
                                    break
                                await asyncio.sleep(0.1)
                            zen.gate.set()
                assert refused  # the listening socket closed while the stream was in flight
                assert len(events) == EVENTS, events  # and the stream ran to its end
            # uvicorn re-raises the signal after its graceful shutdown: "terminated by SIGTERM".
            assert await asyncio.to_thread(proc.wait, 15) in (0, -signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
