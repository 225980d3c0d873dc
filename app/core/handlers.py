"""Exception handlers: every error leaves as an envelope with its real status."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.core import envelope
from app.core.errors import StudioError, code_for_status
from app.core.logging import get_logger

log = get_logger("studio.errors")


def _error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    return envelope.EnvelopeResponse(
        envelope.failure(code, message, details), status_code=status, headers=headers
    )


async def studio_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StudioError)
    if exc.status_code >= 500:
        log.warning("request failed", code=exc.code, reason=exc.detail_message)
    return _error_response(
        exc.status_code, exc.code, exc.detail_message, exc.details, exc.headers or None
    )


async def http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = "No route matches this path"
    return _error_response(
        exc.status_code,
        code_for_status(exc.status_code),
        message,
        None if isinstance(exc.detail, str) else exc.detail,
        dict(exc.headers) if exc.headers else None,
    )


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    # Never echo the offending input: it may be a password or a token.
    return {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}


async def validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _error_response(
        422, "VALIDATION_ERROR", "Request validation failed", [_clean(e) for e in exc.errors()]
    )


async def database_unavailable(_: Request, exc: Exception) -> Response:
    # The database (or the network to it) failed: a 503 the client can retry, never a 500.
    log.error("database unavailable", error=type(exc).__name__)
    return _error_response(503, "DEPENDENCY_UNAVAILABLE", "A required dependency is unavailable")


async def database_error(request: Request, exc: Exception) -> Response:
    # A statement that met a connection the server had closed (it was trusted, having been in
    # use a moment before; the pool is invalidated and the next request gets a new one).
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return await database_unavailable(request, exc)
    raise exc


async def database_rejected(_: Request, exc: Exception) -> Response:
    # A value the database cannot store (e.g. NUL in text) that validation let through.
    log.warning("database refused a value", error=type(exc).__name__)
    return _error_response(422, "VALIDATION_ERROR", "A value is not acceptable")


def install(app: FastAPI) -> None:
    """Register Studio's handlers on the app."""
    app.add_exception_handler(OSError, database_unavailable)  # refused/reset connections
    app.add_exception_handler(asyncpg.PostgresConnectionError, database_unavailable)
    app.add_exception_handler(sa_exc.OperationalError, database_unavailable)
    app.add_exception_handler(sa_exc.InterfaceError, database_unavailable)
    app.add_exception_handler(sa_exc.TimeoutError, database_unavailable)  # pool exhausted
    app.add_exception_handler(sa_exc.DataError, database_rejected)
    app.add_exception_handler(sa_exc.DBAPIError, database_error)  # the most specific one wins
    app.add_exception_handler(StudioError, studio_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
