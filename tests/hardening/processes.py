"""Studio and the fakes as real processes: scale-out, schema fuzzing, `studio serve` workers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx

from tests.conftest import ROOT, TEST_SECRET
from tests.gateway.conftest import NAMES, PASSWORD, USER
from tests.harness.servers import wait_port
from tests.support import free_port, wait_until


def studio_env(
    database_url: str, redis_url: str, prefix: str, log_dir: Path, **extra: str
) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT_", "REDIS_"))},
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "dev",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "JWT_SECRET_KEY": TEST_SECRET,
        "RATE_LIMIT_LOGIN_ATTEMPTS": "100000",
        "RATE_LIMIT_REGISTER_ATTEMPTS": "100000",
        "RUN_MIGRATIONS": "false",
        "SERVICE_HEALTH_CHECK_ENABLED": "false",
        "SERVICE_CONFIG_PATH": str(ROOT / "config" / "services.yaml"),
        "SERVICE_OVERLAY_PATH": str(ROOT / "config" / "local.yml"),
        "LOG_DIR": str(log_dir),
        "LOG_LEVEL": "WARNING",
    }
    for name in NAMES:
        env[f"{name.upper()}_SERVICE_USER"] = USER
        env[f"{name.upper()}_SERVICE_PASSWORD"] = PASSWORD
    env.update(extra)
    return env


def _free_run(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    for _ in range(100):
        base = free_port()
        if base + count > 65000:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no run of free ports")


@contextmanager
def fakes_process(log_dir: Path) -> Iterator[dict[str, str]]:
    """The four fakes in their own process; yields the env that points Studio at them."""
    base = _free_run(4)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_SERVICE_USER": USER,
           "FAKE_SERVICE_PASSWORD": PASSWORD}  # fmt: skip
    with (log_dir / "fakes.out").open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes", "--host", "127.0.0.1", "--base-port", str(base)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        for offset in range(4):
            wait_port(base + offset, timeout=30)
        yield {f"{n.upper()}_URL": f"http://127.0.0.1:{base + i}" for i, n in enumerate(NAMES)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


async def wait_healthy(base: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as http:
        while True:
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{base} did not become healthy in {timeout} s")
            await asyncio.sleep(0.2)


@contextmanager
def studio_processes(env: dict[str, str], ports: list[int], log_dir: Path) -> Iterator[None]:
    """Start one uvicorn process per port; terminate them all on the way out."""
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for port in ports:
            out = log_dir / f"uvicorn-{port}.out"
            with out.open("wb") as sink:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                     "--port", str(port), "--workers", "1", "--no-access-log"],
                    cwd=ROOT,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            procs.append((proc, out))
        yield
    except BaseException:
        for proc, out in procs:
            tail = out.read_text(errors="replace")[-2000:] if out.exists() else ""
            print(f"--- uvicorn pid {proc.pid} (exit {proc.poll()}) ---\n{tail}")
        raise
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


STARTED = "Application startup complete"  # each uvicorn worker logs it once


@asynccontextmanager
async def studio_serve(env: dict[str, str], out: Path, workers: int = 2) -> AsyncIterator[str]:
    """`studio serve --workers N` (the operator's command, its supervisor included) on a free
    port, its output in `out`; yields the base URL once every worker has started. SIGTERM on
    the way out (killed after 40 s); the output's tail is printed when the test fails."""
    port = free_port()
    studio = Path(sys.executable).parent / "studio"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [str(studio), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base)
        # Every worker up, so that none serves everything while another still boots.
        await wait_until(
            lambda: out.read_text(errors="replace").count(STARTED) == workers, 60, "every worker"
        )
        yield base
    except BaseException:
        print(out.read_text(errors="replace")[-4000:])
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
