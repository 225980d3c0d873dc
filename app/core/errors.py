"""Studio's error vocabulary: each error knows its HTTP status and envelope code."""

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


class InvalidCredentials(Unauthorized):
    code = "INVALID_CREDENTIALS"
    message = "Invalid email or password"


class TokenExpired(Unauthorized):
    code = "TOKEN_EXPIRED"
    message = "Token has expired"


class TokenInvalid(Unauthorized):
    code = "TOKEN_INVALID"
    message = "Token is invalid"


class TokenReused(Unauthorized):
    code = "TOKEN_REUSED"
    message = "Refresh token was already used; the session has been revoked"


class SessionRevoked(Unauthorized):
    code = "SESSION_REVOKED"
    message = "Session is no longer valid"


class SessionExpired(Unauthorized):
    code = "SESSION_EXPIRED"
    message = "Session has reached its maximum lifetime; log in again"


class Forbidden(StudioError):
    status_code = 403
    code = "FORBIDDEN"
    message = "Permission denied"


class CsrfFailed(Forbidden):
    """A cookie-authenticated, state-changing request without a matching CSRF token and Origin."""

    code = "CSRF_FAILED"
    message = "CSRF check failed"


class AccountDisabled(StudioError):
    status_code = 403
    code = "ACCOUNT_DISABLED"
    message = "Account is disabled"


class NotFound(StudioError):
    status_code = 404
    code = "NOT_FOUND"
    message = "Not found"


class ServiceNotFound(NotFound):
    code = "SERVICE_NOT_FOUND"
    message = "Service not found"


class RouteNotFound(NotFound):
    code = "ROUTE_NOT_FOUND"
    message = "Route not found"


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


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"
    message = "Email is already registered"


class PayloadTooLarge(StudioError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"
    message = "Request body is too large"


class HeadersTooLarge(StudioError):
    status_code = 431
    code = "HEADERS_TOO_LARGE"
    message = "Request headers are too large"


class RateLimited(StudioError):
    status_code = 429
    code = "RATE_LIMITED"
    message = "Too many requests"


class InvalidPath(StudioError):
    status_code = 400
    code = "INVALID_PATH"
    message = "Invalid path"


class UpstreamUnavailable(StudioError):
    status_code = 502
    code = "UPSTREAM_UNAVAILABLE"
    message = "Upstream service is unavailable"


class UpstreamTimeout(StudioError):
    status_code = 504
    code = "UPSTREAM_TIMEOUT"
    message = "Upstream service timed out"


class CircuitOpen(StudioError):
    status_code = 503
    code = "CIRCUIT_OPEN"
    message = "Upstream service is temporarily disabled"


class UpstreamBusy(StudioError):
    status_code = 503
    code = "UPSTREAM_BUSY"
    message = "Upstream service has no free connection; retry shortly"


class CredentialsUnavailable(StudioError):
    status_code = 503
    code = "CREDENTIALS_UNAVAILABLE"
    message = "Upstream credentials are unavailable"


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
