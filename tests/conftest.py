"""Shared fixtures: a private PostgreSQL database and Redis key prefix per run, an app per test."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from app.core import migrations
from app.core.aws import reset_shared_ssm_clients
from app.core.config import Settings, normalise_database_url
from app.core.db import create_engine
from app.main import create_app
from tests.services import Backends, discover
from tests.support import StateApp

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
RUN_ID = uuid.uuid4().hex[:10]
AWS_REGION = "eu-west-1"
ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "services: needs real PostgreSQL and Redis")


@pytest.fixture(scope="session")
def backends() -> Backends:
    found = discover()
    if found.reason and os.environ.get("STUDIO_REQUIRE_SERVICES") == "1":
        pytest.exit(f"STUDIO_REQUIRE_SERVICES=1 but {found.reason}", returncode=3)
    if found.reason:
        print(f"\n[studio tests] using embedded stand-ins: {found.reason}")
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    found = discover()
    if not found.reason or os.environ.get("STUDIO_REQUIRE_SERVICES") == "1":
        return
    # Only without real services and without STUDIO_REQUIRE_SERVICES: say why and skip.
    skip = pytest.mark.skip(
        reason=f"real services needed (STUDIO_REQUIRE_SERVICES unset): {found.reason}"
    )
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
async def database_url(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh database for this run, migrated to head, dropped afterwards."""
    if backends.database_admin_url is None:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'studio.db'}"
        await _migrate(url)
        yield url
        return
    admin_url = backends.database_admin_url
    name = f"studio_test_{RUN_ID}"
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = normalise_database_url(_with_database(admin_url, name))
    await _migrate(url)
    yield url
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = create_engine(settings)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def redis_url(backends: Backends) -> AsyncIterator[str | None]:
    """The run's Redis; every key it writes starts with `studio-test-<run>` and is removed after."""
    yield backends.redis_url
    if backends.redis_url is None:
        return
    client = Redis.from_url(backends.redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"studio-test-{RUN_ID}*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()


@pytest.fixture
def make_settings(
    database_url: str, redis_url: str | None, tmp_path: Path
) -> Callable[..., Settings]:
    """Settings for one test app: this run's database, its own Redis key prefix, no env files."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "dev",
            "database_url": database_url,
            "redis_url": redis_url,
            "redis_key_prefix": f"studio-test-{RUN_ID}:{next(_counter)}:",
            "jwt_secret_key": TEST_SECRET,
            "log_dir": tmp_path / "logs",
            "log_level": "INFO",
            "rate_limit_login_attempts": 1000,
            "rate_limit_register_attempts": 1000,
            "service_config_path": ROOT / "config" / "services.yaml",
            "service_overlay_path": ROOT / "config" / "local.yml",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def app_state(settings: Settings) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """The app with its lifespan running; yields (app, lifespan state)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        yield app, state


@pytest.fixture
async def client(app_state: tuple[Any, dict[str, Any]]) -> AsyncIterator[httpx.AsyncClient]:
    app, state = app_state
    transport = httpx.ASGITransport(app=StateApp(app, state), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def state(app_state: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
    return app_state[1]


@pytest.fixture
def fake_ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """SSM in moto (region AWS_REGION) with dummy credentials; yields a boto3 SSM client. The
    shared clients Studio caches are dropped before and after, so none outlives the fake."""
    import boto3  # here: moto's import is heavy, and most tests never need it
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
    }.items():
        monkeypatch.setenv(name, value)
    reset_shared_ssm_clients()
    with mock_aws():
        yield boto3.client("ssm", region_name=AWS_REGION)
    reset_shared_ssm_clients()
