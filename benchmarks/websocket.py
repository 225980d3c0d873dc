"""WebSocket relay: messages per second and round-trip latency, direct and through Studio.

`python -m benchmarks.websocket` starts two processes, an aiohttp echo service and Studio's
relay in front of it under uvicorn (production's auth state on a real Redis, `BENCH_REDIS_URL`,
default redis://127.0.0.1:6379/0, keys under a prefix of their own and removed after), then
runs the same client rounds, alternating, against the service directly and through Studio:

- latency: one 64-byte text message at a time, round trip (send, wait for the echo);
- throughput: a window of 64 messages in flight (a sender and a receiver), messages echoed/s.

Each figure is the median of `ROUNDS` rounds. The client runs in this process.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import Any

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
LATENCY_MESSAGES = int(os.environ.get("BENCH_LATENCY_MESSAGES", "2000"))
THROUGHPUT_MESSAGES = int(os.environ.get("BENCH_THROUGHPUT_MESSAGES", "20000"))
WINDOW = 64
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PAYLOAD = "x" * 64


async def serve_downstream() -> None:
    """The echo service, on a free loopback port (printed as `READY <url>`)."""
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"READY ws://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


async def serve_studio(downstream: str) -> None:
    """The relay under uvicorn with a signed-in principal (`READY <url> <token>`)."""
    import uvicorn
    from starlette.types import Receive, Scope, Send

    from app.audit.service import AuditContext
    from app.auth.dependencies import build_auth_state
    from app.auth.login import open_session
    from app.auth.session_data import Grants
    from app.core.config import Settings
    from app.core.redis import create_redis
    from app.identity.dependencies import IDENTIFY
    from app.proxy.breaker import CircuitBreaker
    from app.websocket.downstream import Target
    from app.websocket.front import build_front, running
    from app.websocket.relay import relay

    prefix = f"studio-bench-ws-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        _env_file=None,
        environment="dev",
        redis_url=REDIS_URL,
        redis_key_prefix=prefix,
        jwt_secret_key="benchmark-secret-benchmark-secret-0123456789",
        log_level="WARNING",
    )
    redis = create_redis(settings)
    auth = build_auth_state(settings, redis)
    state = auth.request_state()
    pair = await open_session(
        auth.context,
        "bench-user",
        "bench@example.com",
        Grants(["viewer"], ["zen:chat"], 0),
        AuditContext(client_ip="127.0.0.1", user_agent="benchmark"),
    )
    front = build_front(
        store=auth.session_store,
        redis=redis,
        identify=state[IDENTIFY],
        cookie_policy=auth.cookie_policy,
        key_prefix=prefix,
        per_user_cap=100,
    )

    async def credentials() -> bytes | None:
        return b"Basic c3ZjOnN2Yy1wYXNz"

    target = Target(
        service="zen",
        url=downstream,
        host_header=downstream.split("://", 1)[1].encode(),
        breaker=CircuitBreaker("zen", 5, 30),
        credentials=credentials,
        max_message_bytes=4 * 1024 * 1024,
        idle_timeout=300.0,
        connect_timeout=5.0,
        ping_interval=20.0,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        scope["state"] = dict(state)
        tail = scope["path"][len("/api/v1/zen") :]
        await relay(
            scope, receive, send, front=front, target=target, permission="zen:chat", tail=tail
        )

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    async with running(front):
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"READY ws://127.0.0.1:{port}/api/v1/zen {pair.access_token}", flush=True)
        try:
            await task
        finally:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await redis.delete(*keys)


async def _latency(url: str, headers: dict[str, str]) -> float:
    """Median round trip in microseconds."""
    from websockets.asyncio.client import connect

    samples: list[float] = []
    async with connect(url, additional_headers=headers, compression=None) as ws:
        for _ in range(LATENCY_MESSAGES):
            started = time.perf_counter()
            await ws.send(PAYLOAD)
            await ws.recv()
            samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


async def _throughput(url: str, headers: dict[str, str]) -> float:
    """Messages echoed per second with `WINDOW` in flight."""
    from websockets.asyncio.client import connect

    async with connect(url, additional_headers=headers, compression=None) as ws:
        window = asyncio.Semaphore(WINDOW)

        async def sender() -> None:
            for _ in range(THROUGHPUT_MESSAGES):
                await window.acquire()
                await ws.send(PAYLOAD)

        started = time.perf_counter()
        sending = asyncio.create_task(sender())
        for _ in range(THROUGHPUT_MESSAGES):
            await ws.recv()
            window.release()
        await sending
        return THROUGHPUT_MESSAGES / (time.perf_counter() - started)


async def _child(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.websocket", *args, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().split()
    if not line or line[0] != "READY":
        raise RuntimeError(f"{args[0]} did not start")
    return process, line[1:]


async def main() -> None:
    service, (direct,) = await _child("downstream")
    relay, (through, token) = await _child("studio", direct)
    ways: dict[str, tuple[str, dict[str, str]]] = {
        "direct": (direct + "/echo", {}),
        "studio": (through + "/echo", {"Authorization": f"Bearer {token}"}),
    }
    results: dict[str, dict[str, list[float]]] = {w: {"rtt": [], "mps": []} for w in ways}
    try:
        for _ in range(ROUNDS):
            for way, (url, headers) in ways.items():  # alternating: the same machine state
                results[way]["rtt"].append(await _latency(url, headers))
                results[way]["mps"].append(await _throughput(url, headers))
    finally:
        for process in (relay, service):
            process.terminate()
            await process.wait()
    rows: dict[str, Any] = {
        way: (statistics.median(r["mps"]), statistics.median(r["rtt"]))
        for way, r in results.items()
    }
    print(
        f"rounds {ROUNDS}; latency {LATENCY_MESSAGES} messages; throughput "
        f"{THROUGHPUT_MESSAGES} messages, window {WINDOW}; payload {len(PAYLOAD)} B text"
    )
    print("| way | messages/s (median) | round trip µs (median) |")
    print("|---|---|---|")
    for way, (mps, rtt) in rows.items():
        print(f"| {way} | {mps:,.0f} | {rtt:,.0f} |")
    added = rows["studio"][1] - rows["direct"][1]
    ratio = rows["studio"][0] / rows["direct"][0]
    print(f"added latency per message: {added:,.0f} µs; studio/direct messages/s: {ratio:.2f}")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "run"
    if mode == "downstream":
        asyncio.run(serve_downstream())
    elif mode == "studio":
        asyncio.run(serve_studio(sys.argv[2]))
    else:
        asyncio.run(main())
