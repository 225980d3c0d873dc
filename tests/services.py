"""Find the real PostgreSQL and Redis the suite runs against, or explain why not."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Backends:
    database_admin_url: str | None  # a URL to the server's maintenance database, or None
    redis_url: str | None
    reason: str = ""


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def _docker_runs() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def discover() -> Backends:
    """TEST_* variables, else the local defaults when they answer, else testcontainers."""
    db = os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL
    rd = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
    db_ok, rd_ok = _answers(db, 5432), _answers(rd, 6379)
    if db_ok and rd_ok:
        return Backends(db, rd)
    if _docker_runs():  # pragma: no cover - no Docker engine on the CI machine
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

        pg = PostgresContainer("postgres:16-alpine", driver=None).start()
        redis = RedisContainer("redis:7-alpine").start()
        return Backends(
            pg.get_connection_url(),
            f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
        )
    missing = [
        name for name, ok in (("PostgreSQL at " + db, db_ok), ("Redis at " + rd, rd_ok)) if not ok
    ]
    return Backends(
        db if db_ok else None,
        rd if rd_ok else None,
        "not reachable: " + ", ".join(missing) + " (and no Docker engine for testcontainers)",
    )
