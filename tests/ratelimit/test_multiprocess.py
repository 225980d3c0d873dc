"""The login limit holds across processes: two real Studio servers share one Redis budget."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.auth.helpers import AUTH, PASSWORD, new_email
from tests.conftest import RUN_ID, TEST_SECRET
from tests.support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.services]
LIMIT = 6
ROOT = Path(__file__).resolve().parents[2]  # the project: app.main importable from here


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


async def test_login_limit_is_exact_across_two_processes(
    database_url: str, redis_url: str | None, tmp_path: Path
) -> None:
    if redis_url is None or database_url.startswith("sqlite"):
        pytest.skip("needs real PostgreSQL and Redis (present whenever STUDIO_REQUIRE_SERVICES=1)")
    prefix = f"studio-test-{RUN_ID}:mp-{uuid.uuid4().hex[:8]}:"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT_", "REDIS_"))},
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "dev",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "JWT_SECRET_KEY": TEST_SECRET,
        "RATE_LIMIT_LOGIN_ATTEMPTS": str(LIMIT),
        "RATE_LIMIT_LOGIN_WINDOW": "120",
        "RATE_LIMIT_REGISTER_ATTEMPTS": "100",
        "RUN_MIGRATIONS": "false",
        "SERVICE_HEALTH_CHECK_ENABLED": "false",
        "SERVICE_OVERLAY_PATH": str(ROOT / "config" / "local.yml"),
        "LOG_DIR": str(tmp_path / "logs"),
        "LOG_LEVEL": "WARNING",
    }
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]

    with studio_processes(env, ports, tmp_path):
        await asyncio.gather(*(wait_healthy(b) for b in bases))
        async with httpx.AsyncClient(timeout=30.0) as http:
            email = new_email("mp")
            created = await http.post(
                f"{bases[0]}{AUTH}/register", json={"email": email, "password": PASSWORD}
            )
            assert created.status_code == 201, created.text

            async def attempt(i: int) -> httpx.Response:
                # Alternate the processes; one attempt has the right password, the rest not.
                who = email if i == 0 else new_email("mp-spray")
                password = PASSWORD if i == 0 else "wrong password"
                return await http.post(
                    f"{bases[i % 2]}{AUTH}/login", json={"email": who, "password": password}
                )

            responses = await asyncio.gather(*(attempt(i) for i in range(4 * LIMIT)))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 401, 429}, statuses
    assert statuses[200] + statuses[401] == LIMIT, statuses
    assert statuses[429] == 3 * LIMIT, statuses
    for r in responses:
        assert r.headers["ratelimit-limit"] == str(LIMIT)
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "RATE_LIMITED"
            assert r.headers["retry-after"].isdigit()
    # Both processes answered, and both refused some: the budget was shared, not per process.
    per_process = Counter((str(r.url).split("/api")[0], r.status_code) for r in responses)
    for base in bases:
        assert per_process[(base, 429)] > 0, per_process
    # And Redis holds exactly LIMIT admitted attempts for this client address.
    client = Redis.from_url(redis_url)
    try:
        assert await client.zcard(f"{prefix}rl:{{login-ip:127.0.0.1}}") == LIMIT
    finally:
        await client.aclose()
