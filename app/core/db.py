"""Database: the async engine, the declarative base and the session dependency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, event, exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry

from app.core.config import Settings
from app.core.errors import DependencyUnavailable
from app.core.logging import get_logger

log = get_logger("studio.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """One engine per process: asyncpg pool for PostgreSQL, aiosqlite for the embedded file."""
    url = url or settings.sqlalchemy_url
    if is_sqlite(url):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.postgres_pool_size,
        max_overflow=settings.postgres_max_overflow,
        pool_recycle=1800,
        connect_args={
            "timeout": 5,
            "command_timeout": 30,
            "server_settings": {"application_name": "studio"},
        },
    )
    event.listen(engine.sync_engine, "checkin", _note_checkin)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    event.listen(engine.sync_engine, "do_connect", _connect)
    event.listen(engine.sync_engine, "handle_error", _network_error)
    return engine


# asyncpg lets a refused or reset connection through as a bare `OSError`: named here, where it
# is known to be the database's, so no other `OSError` of a request is ever taken for it.
def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    try:
        return dialect.connect(*cargs, **cparams)
    except OSError as error:
        log.error("database unavailable", error=type(error).__name__)
        raise DependencyUnavailable() from error


def _network_error(context: ExceptionContext) -> BaseException | None:
    if isinstance(context.original_exception, OSError):
        log.error("database unavailable", error=type(context.original_exception).__name__)
        return DependencyUnavailable()
    return None


# A pooled connection idle this long is pinged before use. `pool_pre_ping` pings on every
# checkout, and SQLAlchemy's asyncpg ping is three round trips (BEGIN, ";", ROLLBACK). A
# connection back in the pool a moment ago is trusted instead; if the server went away in that
# moment, the statement fails as a disconnect (503), which invalidates the pool.
PING_IDLE_SECONDS = 2.0
_CHECKED_IN = "studio.checked_in"


def _note_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """Ping a connection that sat idle; a dead one is replaced, and older ones are dropped."""
    since = record.info.get(_CHECKED_IN)
    if since is None or time.monotonic() - since < PING_IDLE_SECONDS:
        return  # new, or in use a moment ago
    try:
        dbapi_connection.ping()
    except Exception as error:
        raise exc.InvalidatePoolError(f"ping failed: {type(error).__name__}") from error


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session per request; the service that changes data owns the commit."""
    async with request.state.sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session)]
