"""Migrations: `alembic upgrade head`, serialised across instances by a PostgreSQL advisory lock."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

SOURCE_ROOT = Path(__file__).resolve().parents[2]
# Any constant shared by every instance; "studio" as a 64-bit integer.
MIGRATION_LOCK_ID = 0x73747564696F


def project_root() -> Path:
    """Where alembic.ini lives: the working directory (container), else the source tree."""
    for candidate in (Path.cwd(), SOURCE_ROOT):
        if (candidate / "alembic.ini").is_file():
            return candidate
    raise FileNotFoundError("alembic.ini not found in the working directory or the source tree")


def alembic_config(connection: Connection | None = None) -> Config:
    root = project_root()
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "alembic"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade to `revision`; idempotent, and safe when several instances boot at once."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Held until this transaction ends: a second instance waits, then finds nothing to do.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        await conn.run_sync(_upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        await conn.run_sync(_downgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
