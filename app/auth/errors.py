"""Errors of authentication and accounts."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, StudioError, Unauthorized


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


class CsrfFailed(Forbidden):
    """A cookie-authenticated, state-changing request without a matching CSRF token and Origin."""

    code = "CSRF_FAILED"
    message = "CSRF check failed"


class AccountDisabled(StudioError):
    status_code = 403
    code = "ACCOUNT_DISABLED"
    message = "Account is disabled"


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"
    message = "Email is already registered"
