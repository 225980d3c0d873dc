"""Login storm: does argon2 hashing under load slow down everything else?

Starts Studio (uvicorn, one worker) against a private PostgreSQL database and a private Redis
key prefix when both answer on 127.0.0.1, else in embedded mode (SQLite + in-process Redis),
creates a user, then probes `GET /health` every 2 ms in alternating phases: alone, and while 20
clients log in continuously from a process of their own (3 rounds of each, 4 s a phase). Each
probe request also goes to a control, a server on the same cores that does nothing but answer
200: what it loses during the storm is what the host adds (2 cores shared by PostgreSQL, Redis,
the storm's clients and the hashing), and the rest is Studio's. Prints p50/p99 of each and the
ratios; stops and removes everything it started. About 40 s.

    python -m benchmarks.login_storm [--seconds 4] [--interval 2] [--rounds 3] [--logins 20]
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


class Probe:
    """Sequential `GET /health` on one keep-alive connection, with raw HTTP/1.1 on asyncio
    streams: a few microseconds of client work per request, so the figures are Studio's and
    the loopback's rather than an HTTP client library's."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Probe:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()

    async def once(self) -> float:
        """One request's latency in milliseconds; exits on anything but a 200."""
        assert self.reader is not None and self.writer is not None
        started = time.perf_counter()
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        elapsed = (time.perf_counter() - started) * 1000
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"/health answered {head.splitlines()[0].decode()}")
        return elapsed


async def paced(probes: list[Probe], seconds: float, interval: float) -> list[list[float]]:
    """Every `interval` seconds, one request to each probe in turn, for `seconds`: a paced
    probe, not a load of its own, so a request arrives at whatever moment the server is in."""
    samples: list[list[float]] = [[] for _ in probes]
    loop = asyncio.get_running_loop()
    start = tick = loop.time()
    while loop.time() - start < seconds:
        for probe, taken in zip(probes, samples, strict=True):
            taken.append(await probe.once())
        # A late answer delays the next request rather than causing a burst to catch up.
        tick = max(tick + interval, loop.time())
        await asyncio.sleep(tick - loop.time())
    return samples


CONTROL_BODY = b'{"success":true,"data":{"status":"ok"},"message":"Studio is running"}'


async def serve_control(port: int) -> None:
    """The control: a server that does nothing but answer 200, on the same cores as Studio.
    Its latency during the storm is what the host alone adds (PostgreSQL, Redis, the storm's
    clients and the hashing compete for 2 cores)."""
    response = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    response %= (len(CONTROL_BODY), CONTROL_BODY)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(response)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def control_process(port: int) -> Iterator[None]:
    command = [sys.executable, "-m", "benchmarks.login_storm", "--control", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT)
    try:
        deadline = time.monotonic() + 10
        while not answers(f"http://127.0.0.1:{port}", port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the control server did not start")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
def storm_process(base: str, logins: int) -> Iterator[dict[int, int]]:
    """Run the storm beside the probe; the yielded dict holds its status counts afterwards."""
    command = [sys.executable, "-m", "benchmarks.login_storm", "--storm", base]
    command += ["--logins", str(logins)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)
    counts: dict[int, int] = {}
    try:
        yield counts
    finally:
        # The storm's clients finish the login they are in, so Studio is idle once it exits.
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        lines = out.decode().strip().splitlines()
        if lines:
            counts.update({int(k): v for k, v in json.loads(lines[-1]).items()})


def report(name: str, samples: list[float]) -> tuple[float, float]:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    print(
        f"{name:<26} n={len(samples):>5}  p50={p50:7.2f} ms  p99={p99:7.2f} ms  "
        f"mean={statistics.fmean(samples):7.2f} ms  max={max(samples):7.2f} ms"
    )
    return p50, p99


async def main(seconds: float, interval: float, logins: int, rounds: int) -> None:
    started = time.monotonic()
    # [studio, control] x [alone, storm]
    alone: list[list[float]] = [[], []]
    loaded: list[list[float]] = [[], []]
    per_round: list[tuple[float, float]] = []
    counts: dict[int, int] = {}
    storm_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        workdir = Path(tmp)
        async with backend(workdir) as where:
            port, control_port = free_port(), free_port()
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
            with studio(env, port, log) as proc, control_process(control_port):
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    await wait_healthy(http, proc, log)
                    created = await http.post(
                        f"{API}/auth/register", json={"email": EMAIL, "password": PASSWORD}
                    )
                    if created.status_code != 201:
                        raise SystemExit(f"register failed: {created.status_code} {created.text}")
                async with Probe(port) as probe, Probe(control_port) as control:
                    await paced([probe, control], 1.0, interval)  # warm-up
                    # Alone and storm phases alternate, so a drift of the host's speed during
                    # the run weighs on both sides alike.
                    for _ in range(rounds):
                        quiet = await paced([probe, control], seconds, interval)
                        with storm_process(base, logins) as round_counts:
                            await asyncio.sleep(1.0)  # let the storm build up
                            storm_started = time.monotonic()
                            busy = await paced([probe, control], seconds, interval)
                            storm_seconds += time.monotonic() - storm_started + 1.0
                        for status, n in round_counts.items():
                            counts[status] = counts.get(status, 0) + n
                        for i in (0, 1):
                            alone[i] += quiet[i]
                            loaded[i] += busy[i]
                        per_round.append((percentile(quiet[0], 99), percentile(busy[0], 99)))

    print()
    p50_alone, p99_alone = report("/health alone", alone[0])
    p50_storm, p99_storm = report(f"/health + {logins} logins", loaded[0])
    _, c99_alone = report("control alone", alone[1])
    _, c99_storm = report(f"control + {logins} logins", loaded[1])
    total = sum(counts.values())
    print(
        f"{'logins during the storm':<26} n={total:>5}  {total / storm_seconds:.1f}/s  "
        f"statuses={dict(sorted(counts.items()))}"
    )
    rounds_text = ", ".join(f"{a:.2f}->{b:.2f}" for a, b in per_round)
    print(f"{'/health p99 by round (ms)':<26} {rounds_text}")
    print(
        f"{'ratio under storm':<26} /health p50 x{p50_storm / p50_alone:.2f}  "
        f"p99 x{p99_storm / p99_alone:.2f};  control p99 x{c99_storm / c99_alone:.2f}"
    )
    print(
        f"{'added by the storm, p99':<26} /health +{p99_storm - p99_alone:.2f} ms, "
        f"control +{c99_storm - c99_alone:.2f} ms"
    )
    print(f"wall time {time.monotonic() - started:.1f} s")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each phase")
    parser.add_argument("--interval", type=float, default=2.0, help="ms between probe requests")
    parser.add_argument("--rounds", type=int, default=3, help="alone/storm phase pairs")
    parser.add_argument("--logins", type=int, default=20, help="concurrent login clients")
    parser.add_argument("--storm", metavar="BASE_URL", help=argparse.SUPPRESS)  # the storm process
    parser.add_argument("--control", type=int, help=argparse.SUPPRESS)  # the control server
    args = parser.parse_args()
    if args.control:
        asyncio.run(serve_control(args.control))
    elif args.storm:
        asyncio.run(storm(args.storm, args.logins))
    else:
        asyncio.run(main(args.seconds, args.interval / 1000, args.logins, args.rounds))


if __name__ == "__main__":
    cli()
