"""Studio and the fakes as real processes, for scale-out and schema fuzzing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT, TEST_SECRET
from tests.gateway.conftest import NAMES, PASSWORD, USER
from tests.harness.servers import wait_port
from tests.support import free_port


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
