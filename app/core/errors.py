"""Studio's base error family: each error knows its HTTP status and envelope code.

Domains declare their own errors next to them (`app/auth/errors.py`, `app/proxy/errors.py`, ...),
subclassing these; every one is rendered by `app.core.render`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class StudioError(Exception):
    """Base of every error rendered as an envelope."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    message: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail_message = message or self.message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.detail_message)


class BadRequest(StudioError):
    status_code = 400
    code = "BAD_REQUEST"
    message = "Bad request"


class ValidationFailed(StudioError):
    status_code = 422
    code = "VALIDATION_ERROR"
    message = "Request validation failed"


class Unauthorized(StudioError):
    status_code = 401
    code = "UNAUTHORIZED"
    message = "Authentication required"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class Forbidden(StudioError):
    status_code = 403
    code = "FORBIDDEN"
    message = "Permission denied"


class NotFound(StudioError):
    status_code = 404
    code = "NOT_FOUND"
    message = "Not found"


class MethodNotAllowed(StudioError):
    status_code = 405
    code = "METHOD_NOT_ALLOWED"
    message = "Method not allowed"


class RequestTimeout(StudioError):
    status_code = 408
    code = "REQUEST_TIMEOUT"
    message = "The request body stopped arriving"


class Conflict(StudioError):
    status_code = 409
    code = "CONFLICT"
    message = "Conflict"


class PayloadTooLarge(StudioError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"
    message = "Request body is too large"


class HeadersTooLarge(StudioError):
    status_code = 431
    code = "HEADERS_TOO_LARGE"
    message = "Request headers are too large"


class DependencyUnavailable(StudioError):
    status_code = 503
    code = "DEPENDENCY_UNAVAILABLE"
    message = "A required dependency is unavailable"


class InternalError(StudioError):
    pass


# Status -> code for errors raised by the framework itself (routing, HTTPException).
STATUS_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    431: "HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    502: "UPSTREAM_UNAVAILABLE",
    503: "SERVICE_UNAVAILABLE",
    504: "UPSTREAM_TIMEOUT",
}


def code_for_status(status: int) -> str:
    """The envelope code for a bare HTTP status."""
    return STATUS_CODES.get(status, "HTTP_ERROR" if status < 500 else "INTERNAL_ERROR")
