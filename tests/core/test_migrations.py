"""Migrations run on PostgreSQL and SQLite, idempotently, and safely in parallel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import inspect, text

from app.core import migrations
from app.core.config import Settings
from app.core.db import create_engine
from tests.services import Backends

TABLES = {"user", "role", "permission", "role_permission", "user_role", "audit_event"}


def engine_for(url: str):  # type: ignore[no-untyped-def]
    return create_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]


async def table_names(url: str) -> set[str]:
    engine = engine_for(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


@pytest.fixture
async def empty_pg(backends: Backends) -> AsyncIterator[str]:
    assert backends.database_admin_url
    name = f"studio_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(backends.database_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = backends.database_admin_url.rpartition("/")[0]
    yield f"postgresql+asyncpg://{base.split('://', 1)[1]}/{name}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def upgrade_twice_and_check(url: str) -> None:
    engine = engine_for(url)
    try:
        await migrations.upgrade(engine)
        await migrations.upgrade(engine)  # idempotent: nothing left to do
        assert await migrations.current_revision(engine) == "0003"
        async with engine.connect() as conn:
            roles = set((await conn.execute(text("SELECT name FROM role"))).scalars())
        assert roles == {"admin", "analyst", "viewer"}
    finally:
        await engine.dispose()
    assert await table_names(url) >= TABLES


@pytest.mark.services
async def test_postgres_upgrade_is_idempotent(empty_pg: str) -> None:
    await upgrade_twice_and_check(empty_pg)


async def test_sqlite_upgrade_is_idempotent(tmp_path: Path) -> None:
    await upgrade_twice_and_check(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


@pytest.mark.services
async def test_parallel_boots_migrate_once(empty_pg: str) -> None:
    """Four instances booting together: the advisory lock serialises them, none fails."""
    engines = [engine_for(empty_pg) for _ in range(4)]
    try:
        await asyncio.gather(*(migrations.upgrade(e) for e in engines))
        async with engines[0].connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM role"))).scalar_one()
        assert count == 3  # the seed ran exactly once
    finally:
        for e in engines:
            await e.dispose()


@pytest.mark.services
async def test_downgrade_to_base_and_back(empty_pg: str) -> None:
    engine = engine_for(empty_pg)
    try:
        await migrations.upgrade(engine)
        await migrations.downgrade(engine, "base")
        assert await migrations.current_revision(engine) is None
        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) == "0003"
    finally:
        await engine.dispose()
