"""Login storm: does argon2 hashing under load slow down everything else?

Starts Studio (uvicorn, one worker) against a private PostgreSQL database and a private Redis
key prefix when both answer on 127.0.0.1, else in embedded mode (SQLite + in-process Redis),
creates a user, then measures `GET /health` latency twice: alone, and while 20 clients log in
concurrently in a loop. The storm runs in a process of its own, so the probe's latencies are
Studio's and not the load generator's own event loop. Prints p50/p99 of both and their ratio;
stops and removes everything it started. Bounded to well under a minute.

    python -m benchmarks.login_storm [--requests 2000] [--logins 20] [--max-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "benchmark-secret-key-that-is-long-enough-0123456789"
EMAIL = "storm@example.com"
PASSWORD = "benchmark passphrase 123"
API = "/api/v1"


def answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Backend:
    """Where this run's Studio keeps its data, and how to remove it afterwards."""

    env: dict[str, str]
    description: str
    database: str | None = None
    redis_prefix: str | None = None
    cleanups: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def backend(workdir: Path) -> AsyncIterator[Backend]:
    run = uuid.uuid4().hex[:8]
    if answers(PG_ADMIN_URL, 5432) and answers(REDIS_URL, 6379):
        name = f"studio_bench_{run}"
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        base = PG_ADMIN_URL.rpartition("/")[0]
        prefix = f"studio-bench-{run}:"
        found = Backend(
            env={
                "DATABASE_URL": f"{base}/{name}",
                "REDIS_URL": REDIS_URL,
                "REDIS_KEY_PREFIX": prefix,
                "RUN_MIGRATIONS": "true",
            },
            description=f"PostgreSQL database {name}, Redis prefix {prefix}",
            database=name,
            redis_prefix=prefix,
        )
    else:
        found = Backend(
            env={"EMBEDDED_DATABASE_PATH": str(workdir / "studio.db")},
            description="embedded SQLite and in-process Redis (PostgreSQL or Redis not reachable)",
        )
    try:
        yield found
    finally:
        if found.redis_prefix:
            client = Redis.from_url(REDIS_URL)
            try:
                keys = [
                    k async for k in client.scan_iter(match=f"{found.redis_prefix}*", count=1000)
                ]
                for i in range(0, len(keys), 500):
                    await client.delete(*keys[i : i + 500])
            finally:
                await client.aclose()
        if found.database:
            conn = await asyncpg.connect(PG_ADMIN_URL)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{found.database}" WITH (FORCE)')
            finally:
                await conn.close()


@contextlib.contextmanager
def studio(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Studio under uvicorn (uvloop, httptools, one worker), as `studio serve` runs it."""
    command = [
        sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


async def wait_healthy(http: httpx.AsyncClient, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"Studio exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if (await http.get("/health")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise SystemExit(f"Studio did not become healthy in 30 s:\n{log.read_text()[-3000:]}")


async def health_latencies(http: httpx.AsyncClient, count: int, deadline: float) -> list[float]:
    """Sequential `GET /health` latencies in milliseconds (stops early at `deadline`)."""
    samples: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        response = await http.get("/health")
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"/health answered {response.status_code}")
        if time.monotonic() > deadline:
            break
    return samples


async def login_loop(http: httpx.AsyncClient, stop: asyncio.Event, counts: dict[int, int]) -> None:
    while not stop.is_set():
        response = await http.post(f"{API}/auth/login", json={"email": EMAIL, "password": PASSWORD})
        counts[response.status_code] = counts.get(response.status_code, 0) + 1


async def storm(base: str, logins: int) -> None:
    """The storm process: `logins` clients log in until SIGTERM, then print status counts."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    counts: dict[int, int] = {}
    limits = httpx.Limits(max_connections=logins, max_keepalive_connections=logins)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        workers = [asyncio.create_task(login_loop(http, stop, counts)) for _ in range(logins)]
        await asyncio.gather(*workers)
    print(json.dumps(counts), flush=True)


@contextlib.contextmanager
def storm_process(base: str, logins: int) -> Iterator[dict[str, Any]]:
    """Run the storm beside the probe; yields a dict that holds its status counts afterwards."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.login_storm",
        "--storm",
        base,
        "--logins",
        str(logins),
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)
    outcome: dict[str, Any] = {}
    try:
        yield outcome
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        lines = out.decode().strip().splitlines()
        outcome["counts"] = {int(k): v for k, v in json.loads(lines[-1]).items()} if lines else {}


def report(name: str, samples: list[float]) -> tuple[float, float]:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    print(
        f"{name:<26} n={len(samples):>5}  p50={p50:7.2f} ms  p99={p99:7.2f} ms  "
        f"mean={statistics.fmean(samples):7.2f} ms  max={max(samples):7.2f} ms"
    )
    return p50, p99


async def main(requests: int, logins: int, max_seconds: float) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        workdir = Path(tmp)
        async with backend(workdir) as where:
            port = free_port()
            env = {
                **{
                    k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_"))
                },
                **where.env,
                "PYTHONPATH": str(ROOT),
                "ENVIRONMENT": "dev",
                "JWT_SECRET_KEY": SECRET,
                "RATE_LIMIT_LOGIN_ATTEMPTS": "100000000",
                "RATE_LIMIT_REGISTER_ATTEMPTS": "1000",
                "SERVICE_HEALTH_CHECK_ENABLED": "false",
                "LOG_DIR": str(workdir / "logs"),
                "LOG_LEVEL": "WARNING",
            }
            log = workdir / "studio.log"
            print(f"Studio on 127.0.0.1:{port}, {where.description}; cpus={os.cpu_count()}")
            with studio(env, port, log) as proc:
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=base, timeout=30) as probe:
                    await wait_healthy(probe, proc, log)
                    created = await probe.post(
                        f"{API}/auth/register", json={"email": EMAIL, "password": PASSWORD}
                    )
                    if created.status_code != 201:
                        raise SystemExit(f"register failed: {created.status_code} {created.text}")
                    await health_latencies(probe, 100, time.monotonic() + 5)  # warm-up

                    alone = await health_latencies(probe, requests, time.monotonic() + max_seconds)

                    with storm_process(base, logins) as outcome:
                        await asyncio.sleep(1.0)  # let the storm build up
                        storm_started = time.monotonic()
                        loaded = await health_latencies(
                            probe, requests, time.monotonic() + max_seconds
                        )
                        storm_seconds = time.monotonic() - storm_started
                    counts: dict[int, int] = outcome["counts"]

    print()
    p50_alone, p99_alone = report("/health alone", alone)
    p50_storm, p99_storm = report(f"/health + {logins} logins", loaded)
    total = sum(counts.values())
    print(
        f"{'logins during the storm':<26} n={total:>5}  {total / (storm_seconds + 0.5):.1f}/s  "
        f"statuses={dict(sorted(counts.items()))}"
    )
    ratio_p50, ratio_p99 = p50_storm / p50_alone, p99_storm / p99_alone
    print(f"{'ratio under storm':<26} p50 x{ratio_p50:.2f}  p99 x{ratio_p99:.2f}")
    print(f"wall time {time.monotonic() - started:.1f} s")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="/health requests per phase")
    parser.add_argument("--logins", type=int, default=20, help="concurrent login clients")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time cap per phase")
    parser.add_argument("--storm", metavar="BASE_URL", help=argparse.SUPPRESS)  # the storm process
    args = parser.parse_args()
    if args.storm:
        asyncio.run(storm(args.storm, args.logins))
    else:
        asyncio.run(main(args.requests, args.logins, args.max_seconds))


if __name__ == "__main__":
    cli()
