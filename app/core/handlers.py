"""Exception handlers: every error leaves as an envelope with its real status."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.core.errors import DependencyUnavailable, StudioError, ValidationFailed, code_for_status
from app.core.logging import get_logger
from app.core.render import ErrorResponse, render

log = get_logger("studio.errors")


async def studio_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StudioError)
    return ErrorResponse(exc)


async def http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = "No route matches this path"
    details = None if isinstance(exc.detail, str) else exc.detail
    code = code_for_status(exc.status_code)
    return ErrorResponse(render(exc.status_code, code, message, details, exc.headers))


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    # Never echo the offending input: it may be a password or a token.
    return {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}


async def validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return ErrorResponse(ValidationFailed(details=[_clean(e) for e in exc.errors()]))


async def database_unavailable(_: Request, exc: Exception) -> Response:
    # The database (or the network to it) failed: a 503 the client can retry, never a 500.
    log.error("database unavailable", error=type(exc).__name__)
    return ErrorResponse(DependencyUnavailable())


async def database_error(request: Request, exc: Exception) -> Response:
    # A statement that met a connection the server had closed (it was trusted, having been in
    # use a moment before; the pool is invalidated and the next request gets a new one).
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return await database_unavailable(request, exc)
    raise exc


async def database_rejected(_: Request, exc: Exception) -> Response:
    # A value the database cannot store (e.g. NUL in text) that validation let through.
    log.warning("database refused a value", error=type(exc).__name__)
    return ErrorResponse(ValidationFailed("A value is not acceptable"))


def install(app: FastAPI) -> None:
    """Register Studio's handlers on the app. A database's refused or reset connection (an
    `OSError` below SQLAlchemy) reaches these as `DependencyUnavailable` (`app.core.db`)."""
    app.add_exception_handler(asyncpg.PostgresConnectionError, database_unavailable)
    app.add_exception_handler(sa_exc.OperationalError, database_unavailable)
    app.add_exception_handler(sa_exc.InterfaceError, database_unavailable)
    app.add_exception_handler(sa_exc.TimeoutError, database_unavailable)  # pool exhausted
    app.add_exception_handler(sa_exc.DataError, database_rejected)
    app.add_exception_handler(sa_exc.DBAPIError, database_error)  # the most specific one wins
    app.add_exception_handler(StudioError, studio_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
