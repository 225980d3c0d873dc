"""Failure timings: how long Studio takes to answer when something is slow, down or hostile.

The tests assert order and counts only; the times are measured here. One Studio is built with
`create_app` and served in this event loop by uvicorn with the protocol of `studio serve`
(tests/proxy/conftest.py `serve_studio`), against a private PostgreSQL database and Redis key
prefix (benchmarks/login_storm.py `backend`) and fake downstreams (tests/fakes) on loopback:

1. 504 `UPSTREAM_TIMEOUT`: read timeout 0.5 s, the downstream answers after 3 s.
2. 502 `UPSTREAM_UNAVAILABLE`: the downstream port is bound and never listens (refused).
3. 30 concurrent proxied GETs to a healthy service, idle and while another's pool (2) is hung.
4. `GET /health` (liveness), alone and with 100 slowloris connections dripping a byte a second.
5. First SSE event, direct from the downstream and through Studio (request to first event).
6. Login with a wrong password: known email vs unknown email, 8 each, and the ratio.
7. SIGTERM to `studio serve` (a subprocess on the same database) while a stream is open,
   until its listener refuses connections.

Each line gives the median and max in milliseconds. The client shares the process and event
loop with Studio (1-6), so its own work on the same cores is in the figures.

    python -m benchmarks.timings [--reps 5] [--serve-reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.core.config import Settings
from app.main import create_app
from benchmarks.login_storm import API, EMAIL, PASSWORD, SECRET, backend
from tests.fakes.server import FakeService
from tests.support import free_port, live_server, refusing_port, serve_studio

ROOT = Path(__file__).resolve().parents[1]
HEADER = (
    "| measure                                      | median ms |    max ms |   n | setup\n"
    "|----------------------------------------------|-----------|-----------|-----|------"
)


@dataclass
class Rig:
    """A running Studio, a client signed in to it, and the fakes behind it."""

    studio: str
    http: httpx.AsyncClient
    fakes: dict[str, FakeService]
    urls: dict[str, str]
    reps: int


def row(name: str, samples: list[float], setup: str) -> None:
    median, worst = statistics.median(samples), max(samples)
    print(f"| {name:<44} | {median:>9.1f} | {worst:>9.1f} | {len(samples):>3} | {setup}")


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def expect(http: httpx.AsyncClient, path: str, status: int, code: str = "") -> None:
    r = await http.get(path)
    if r.status_code != status or (code and r.json()["error"]["code"] != code):
        raise SystemExit(f"{path}: expected {status} {code}, got {r.status_code} {r.text[:300]}")


def service(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": url,
        "mode": "wildcard",
        "auth": {"type": "none"},
        "permissions": {"read": "nexus:read", "write": "nexus:read"},  # the viewer's
        # The breaker stays closed: every repetition meets the failure itself.
        "circuit_breaker": {"failure_threshold": 1000, "open_seconds": 1},
        **extra,
    }


async def upstream_failures(rig: Rig) -> None:
    async def fails(path: str, status: int, code: str) -> list[float]:
        return [await timed(lambda: expect(rig.http, path, status, code)) for _ in range(rig.reps)]

    slow = await fails(f"{API}/slow/slow?seconds=3", 504, "UPSTREAM_TIMEOUT")
    row("1. 504 UPSTREAM_TIMEOUT", slow, "read timeout 0.5 s, answer after 3 s")
    down = await fails(f"{API}/down/x", 502, "UPSTREAM_UNAVAILABLE")
    row("2. 502 UPSTREAM_UNAVAILABLE", down, "bound port, not listening; GET retried twice")


async def hung_pool(rig: Rig) -> None:
    async def burst() -> None:
        await asyncio.gather(*(expect(rig.http, f"{API}/zen/fast/{i}", 200) for i in range(30)))

    idle = [await timed(burst) for _ in range(rig.reps)]
    row("3a. 30 concurrent GETs, nothing hung", idle, "30 at once, time to the last answer")
    hung = [asyncio.create_task(rig.http.get(f"{API}/hung/hang")) for _ in range(6)]
    try:
        while len(rig.fakes["hung"].calls("/hang")) < 2:  # both pooled connections held
            await asyncio.sleep(0.01)
        samples = [await timed(burst) for _ in range(rig.reps)]
        if any(task.done() for task in hung):
            raise SystemExit("a hung request ended during the burst")
    finally:
        for task in hung:
            task.cancel()
        await asyncio.gather(*hung, return_exceptions=True)
    row("3b. 30 concurrent GETs, other pool hung", samples, "6 requests held by `hung` (pool 2)")


@contextlib.asynccontextmanager
async def slowloris(port: int, count: int) -> AsyncIterator[list[asyncio.StreamReader]]:
    """`count` connections sending a request head a byte a second, never finishing it."""
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    for _, writer in streams:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-a: ")

    async def drip() -> None:
        while True:
            await asyncio.sleep(1)
            for _, writer in streams:
                with contextlib.suppress(ConnectionError):
                    writer.write(b"a")

    dripping = asyncio.create_task(drip())
    try:
        yield [reader for reader, _ in streams]
    finally:
        dripping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dripping
        for _, writer in streams:
            writer.close()


async def health_under_slowloris(rig: Rig) -> None:
    probes = max(rig.reps, 20)

    async def health() -> list[float]:
        return [await timed(lambda: expect(rig.http, "/health", 200)) for _ in range(probes)]

    row("4a. GET /health", await health(), "sequential, keep-alive")
    async with slowloris(int(rig.studio.rsplit(":", 1)[1]), 100) as readers:
        await asyncio.sleep(1.5)  # the first drip has gone out
        samples = await health()
        still_open = sum(not reader.at_eof() for reader in readers)
    row("4b. GET /health, 100 slowloris open", samples, f"{still_open} of 100 still open after")


async def first_event(http: httpx.AsyncClient, url: str) -> float:
    """Milliseconds from sending the request to the first event's data line."""
    started = time.perf_counter()
    async with http.stream("GET", url, params={"n": 2, "interval": 0.05}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                return (time.perf_counter() - started) * 1000
    raise SystemExit(f"{url}: no event")


async def sse_first_event(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.urls["sse"], timeout=30) as direct:
        samples = [await first_event(direct, "/sse") for _ in range(rig.reps)]
    row("5a. first SSE event, direct", samples, "keep-alive client, request to first data line")
    samples = [await first_event(rig.http, f"{API}/sse/sse") for _ in range(rig.reps)]
    row("5b. first SSE event, through Studio", samples, "the same, with a bearer token")


async def login_timing(rig: Rig) -> None:
    known: list[float] = []
    unknown: list[float] = []
    async with httpx.AsyncClient(base_url=rig.studio, timeout=60) as anon:
        for _ in range(8):  # interleaved, so both meet the same load
            stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
            for email, samples in ((EMAIL, known), (stranger, unknown)):
                body = {"email": email, "password": "wrong-password-1"}
                started = time.perf_counter()
                r = await anon.post(f"{API}/auth/login", json=body)
                samples.append((time.perf_counter() - started) * 1000)
                if r.status_code != 401:
                    raise SystemExit(f"login {email}: {r.status_code} {r.text[:300]}")
    ratio = statistics.median(known) / statistics.median(unknown)
    row("6a. login 401, known email", known, "wrong password, sequential")
    row("6b. login 401, unknown email", unknown, f"median ratio known/unknown {ratio:.2f}")


async def listener_closed(port: int, limit: float = 30) -> float:
    """Milliseconds until a connection to `port` is refused (polled every ~2 ms)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return (time.perf_counter() - started) * 1000
        writer.close()
        await asyncio.sleep(0.002)
    raise SystemExit(f"port {port} still accepting {limit} s after SIGTERM")


async def sigterm_once(env: dict[str, str], sse: FakeService, token: str, log: Path) -> float:
    port = free_port()  # `studio serve` takes its port on the command line
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while proc.poll() is None:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            if proc.poll() is not None:
                raise SystemExit(f"studio serve exited:\n{log.read_text()[-3000:]}")
            sse.sse_gate = gate = asyncio.Event()  # the second event waits for it
            params = {"n": 2, "gated": 1}
            headers = {"Authorization": f"Bearer {token}"}
            async with http.stream("GET", f"{API}/sse/sse", params=params, headers=headers) as r:
                lines = r.aiter_lines()
                async for line in lines:
                    if line.startswith("data: "):
                        break
                proc.send_signal(signal.SIGTERM)
                closed = await listener_closed(port)
                gate.set()
                rest = [line async for line in lines if line.startswith("data: ")]
                if len(rest) != 1:
                    raise SystemExit("the open stream did not run to its end")
        code = await asyncio.to_thread(proc.wait, 30)
        if code not in (0, -signal.SIGTERM):
            raise SystemExit(f"studio serve exited {code}:\n{log.read_text()[-3000:]}")
        return closed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def configure(
    tmp: Path, urls: dict[str, str], refused: int, store: dict[str, str]
) -> dict[str, str]:
    """Write the registry (and an empty overlay); returns Studio's environment."""
    timeouts = {"connect": 2, "read": 0.5, "write": 5, "pool": 5}
    services = {
        "slow": service(urls["slow"], timeouts=timeouts),
        "down": service(f"http://127.0.0.1:{refused}"),
        "zen": service(urls["zen"]),
        "hung": service(urls["hung"], max_connections=2, timeouts={**timeouts, "read": 30}),
        "sse": service(urls["sse"]),
    }
    (tmp / "services.yaml").write_text(yaml.safe_dump({"services": services}))
    (tmp / "overlay.yaml").write_text("services: {}\n")
    return {
        "ENVIRONMENT": "dev",
        "JWT_SECRET_KEY": SECRET,
        "LOG_DIR": str(tmp / "logs"),
        "LOG_LEVEL": "ERROR",  # each 502 and 504 would log a warning
        "SERVICE_CONFIG_PATH": str(tmp / "services.yaml"),
        "SERVICE_OVERLAY_PATH": str(tmp / "overlay.yaml"),
        "RATE_LIMIT_LOGIN_ATTEMPTS": "1000000",
        **store,
    }


async def main(args: argparse.Namespace) -> None:
    fakes = {name: FakeService(name) for name in ("slow", "zen", "hung", "sse")}
    with tempfile.TemporaryDirectory(prefix="studio-timings-") as tmp_name:
        tmp = Path(tmp_name)
        async with backend(tmp) as where, AsyncExitStack() as stack:
            urls = {n: await stack.enter_async_context(live_server(f)) for n, f in fakes.items()}
            env = configure(tmp, urls, stack.enter_context(refusing_port()), where.env)
            values: dict[str, Any] = {k.lower(): v for k, v in env.items()}
            settings = Settings(_env_file=None, **values)
            studio = await stack.enter_async_context(serve_studio(create_app(settings), settings))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=studio, timeout=60))
            account = {"email": EMAIL, "password": PASSWORD}
            await http.post(f"{API}/auth/register", json=account)
            login = await http.post(f"{API}/auth/login", json=account)
            token = login.json()["result"]["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"

            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            print(f"# Studio failure timings, {when}, nproc={os.cpu_count()}")
            print(f"# backend: {where.description}\n{HEADER}")
            rig = Rig(studio, http, fakes, urls, args.reps)
            for measure in (
                upstream_failures,
                hung_pool,
                health_under_slowloris,
                sse_first_event,
                login_timing,
            ):
                await measure(rig)
            if args.serve_reps:
                outer = {
                    k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))
                }
                run_env = {**outer, **env, "RUN_MIGRATIONS": "false"}  # migrated above
                log = tmp / "serve.log"
                closed = [
                    await sigterm_once(run_env, fakes["sse"], token, log)
                    for _ in range(args.serve_reps)
                ]
                setup = "`studio serve` subprocess, 1 worker; the stream then ends normally"
                row("7. SIGTERM to listener closed, stream open", closed, setup)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of 1, 2, 3 and 5")
    parser.add_argument("--serve-reps", type=int, default=3, help="`studio serve` runs for 7")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
