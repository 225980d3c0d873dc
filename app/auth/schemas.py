"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.envelope import ALWAYS_SENT

PASSWORD_MIN = 8
PASSWORD_MAX = 128
EMAIL_MAX = 254  # RFC 5321's path limit less its angle brackets; no longer address is usable
LOGIN_EMAIL_MAX = 320  # what login accepts to compare: longer than EMAIL_MAX matches no one


def normalise_email(value: str) -> str:
    """Trimmed, lower-cased and syntactically valid (no deliverability lookup)."""
    value = value.strip().lower()
    if len(value) > EMAIL_MAX:
        raise ValueError(f"email is longer than {EMAIL_MAX} characters")
    try:
        email = validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email: {exc}") from None
    if len(email) > EMAIL_MAX:  # normalisation can lengthen it
        raise ValueError(f"email is longer than {EMAIL_MAX} characters")
    return email


def login_email(value: str) -> str:
    """The form an email is stored in, for lookups: refuses control characters, and falls back
    to trimmed lower case for strings that are not valid addresses (they match no account)."""
    _printable(value)
    try:
        return normalise_email(value)
    except ValueError:
        return value.strip().lower()


def _printable(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError("control characters are not allowed")
    return value


def _password(value: str) -> str:
    if "\x00" in value:  # argon2 would accept it, but nothing legitimate sends one
        raise ValueError("NUL is not allowed in a password")
    return value


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=EMAIL_MAX),
    AfterValidator(normalise_email),
]
Password = Annotated[
    str,
    StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX),
    AfterValidator(_password),
]
FullName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_printable),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    """Roles and status are not accepted here: a new account is an active `viewer`."""

    email: Email
    password: Password
    full_name: FullName | None = None


LoginEmail = Annotated[
    str,
    StringConstraints(min_length=1, max_length=LOGIN_EMAIL_MAX),
    AfterValidator(login_email),
]


class LoginRequest(Strict):
    email: LoginEmail
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    mode: Literal["bearer", "cookie"] = Field(
        "bearer",
        description="`bearer`: the tokens are returned. `cookie` (browsers, BFF): Studio keeps "
        "the tokens and sets an HttpOnly session cookie and a CSRF cookie instead.",
    )


class PasswordChangeRequest(Strict):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Password


class UserRead(BaseModel):
    model_config = ALWAYS_SENT

    id: uuid.UUID
    email: str
    full_name: str | None
    is_active: bool
    roles: list[str]
    permissions: list[str]
    created_at: datetime
    last_login_at: datetime | None = None


class RegisterResult(BaseModel):
    model_config = ALWAYS_SENT

    user: UserRead


class TokenPair(BaseModel):
    model_config = ALWAYS_SENT

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_expires_in: int
    user: UserRead | None = None


class CookieSession(BaseModel):
    """A cookie-mode login: no token leaves Studio; send `csrf_token` as `X-CSRF-Token`."""

    model_config = ALWAYS_SENT

    mode: Literal["cookie"] = "cookie"
    csrf_token: str
    expires_in: int = Field(description="Seconds until the session cookie expires")
    user: UserRead


class CsrfTokenRead(BaseModel):
    model_config = ALWAYS_SENT

    csrf_token: str | None = Field(
        description="The cookie session's CSRF token; null for a Bearer caller"
    )


class OAuthTokenResponse(BaseModel):
    model_config = ALWAYS_SENT

    """RFC 6749 §5.1, for Swagger's Authorize button."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str


class TokenForm(BaseModel):
    """The form of `POST /auth/token` (RFC 6749 §4.3.2). Every field optional here so that a
    missing one is answered as RFC 6749 says (`invalid_request`), not as a 422 envelope; other
    fields (`client_id`, `scope`) are ignored."""

    grant_type: Annotated[str | None, StringConstraints(max_length=64)] = Field(
        None,
        description="`password` (the default); any other is `unsupported_grant_type`",
        examples=["password"],
    )
    username: Annotated[str | None, StringConstraints(max_length=LOGIN_EMAIL_MAX)] = Field(
        None, description="The account's email"
    )
    password: Annotated[str | None, StringConstraints(max_length=1024)] = None


OAuthErrorCode = Literal["invalid_request", "unsupported_grant_type", "invalid_grant"]


class OAuthError(BaseModel):
    """RFC 6749 §5.2 error body of `POST /auth/token`."""

    model_config = ALWAYS_SENT

    error: OAuthErrorCode


class PasswordChanged(BaseModel):
    model_config = ALWAYS_SENT

    revoked_sessions: int = Field(description="How many other sessions were ended")


class SessionRead(BaseModel):
    model_config = ALWAYS_SENT

    id: str
    current: bool
    client_ip: str | None
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime


class SessionsResult(BaseModel):
    model_config = ALWAYS_SENT

    sessions: list[SessionRead] = Field(default_factory=list)
