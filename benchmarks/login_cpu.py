"""Event-loop CPU per login: what a login costs every other request on its worker.

Builds Studio in-process against a private PostgreSQL database and Redis key prefix (both on
127.0.0.1), registers a user, then drives `POST /api/v1/auth/login` N times straight through
the ASGI app (no HTTP server, no client library) and prints the CPU time of the event-loop
thread per login. Hashing runs in its own thread and is not counted: what is left is the
Python a login runs between awaits, which every request on the same worker waits behind.

    python -m benchmarks.login_cpu [--logins 300]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop
from redis.asyncio import Redis

from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app
from benchmarks.login_storm import EMAIL, PASSWORD, PG_ADMIN_URL, REDIS_URL, SECRET

LOGIN = "/api/v1/auth/login"


async def call(app: Any, state: Mapping[str, Any] | None, path: str, body: bytes) -> int:
    """One POST through the ASGI app; returns the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": dict(state or {}),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def main(logins: int, workdir: Path) -> None:
    name = f"studio_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"postgresql+asyncpg://{PG_ADMIN_URL.split('://', 1)[1].rpartition('/')[0]}/{name}"
    prefix = f"studio-bench-{name}:"
    try:
        engine = create_engine(Settings(_env_file=None, database_url=url))
        await migrations.upgrade(engine)
        await engine.dispose()
        settings = Settings(
            _env_file=None,
            environment="dev",
            database_url=url,
            redis_url=REDIS_URL,
            redis_key_prefix=prefix,
            jwt_secret_key=SECRET,
            log_level="WARNING",
            log_dir=workdir,
            rate_limit_login_attempts=10**8,
            service_health_check_enabled=False,
        )
        app = create_app(settings)
        body = orjson.dumps({"email": EMAIL, "password": PASSWORD})
        async with app.router.lifespan_context(app) as state:
            assert await call(app, state, "/api/v1/auth/register", body) == 201
            for _ in range(20):  # warm-up: caches, prepared statements, pools
                assert await call(app, state, LOGIN, body) == 200
            cpu, wall = time.thread_time(), time.perf_counter()
            for _ in range(logins):
                assert await call(app, state, LOGIN, body) == 200
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        print(
            f"{logins} logins: event-loop thread CPU {cpu / logins * 1000:.2f} ms per login, "
            f"wall {wall / logins * 1000:.2f} ms per login (hashing included)"
        )
    finally:
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        uvloop.run(main(args.logins, Path(tmp)))


if __name__ == "__main__":
    cli()
