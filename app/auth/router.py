"""`{prefix}/auth`: register, login, token, refresh, logout, me, sessions, password."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.security import HTTPBearer
from starlette.responses import Response

from app.audit.dependencies import Audit
from app.auth import answers, renewal, revocation, service
from app.auth import login as sign_in
from app.auth.cookies import CookieGrant
from app.auth.dependencies import Auth, Policy, Sessions, Tokens, authenticate, bearer_token
from app.auth.errors import (
    AccountDisabled,
    CsrfFailed,
    EmailTaken,
    InvalidCredentials,
    SessionRevoked,
)
from app.auth.schemas import (
    CookieSession,
    CsrfTokenRead,
    LoginRequest,
    OAuthError,
    OAuthErrorCode,
    OAuthTokenResponse,
    PasswordChanged,
    PasswordChangeRequest,
    RegisterRequest,
    RegisterResult,
    SessionRead,
    SessionsResult,
    TokenForm,
    TokenPair,
    UserRead,
    login_email,
)
from app.core import envelope
from app.core.config import Settings
from app.core.db import DbSession
from app.core.dependencies import AppSettings
from app.core.envelope import Envelope, RawJSONResponse
from app.core.errors import DependencyUnavailable, NotFound, StudioError, Unauthorized
from app.core.raises import raises
from app.identity.dependencies import CREDENTIALS, CurrentPrincipal
from app.ratelimit.dependencies import client_key, enforce
from app.ratelimit.errors import RateLimited

router = APIRouter(prefix="/auth", tags=["auth"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _no_store(request: Request) -> None:
    # Tokens and account data must never sit in a browser or proxy cache.
    request.scope.setdefault("state", {}).setdefault("response_headers", {}).update(NO_STORE)


router.dependencies.append(Depends(_no_store))

# Declared for OpenAPI: `POST /auth/refresh` takes the refresh token, never the access token.
refresh_scheme = HTTPBearer(
    scheme_name="RefreshToken",
    bearerFormat="JWT",
    description="`Authorization: Bearer <refresh token>`, for `POST /auth/refresh` only.",
    auto_error=False,
)


def _set_cookies(response: Response, values: list[str]) -> None:
    for value in values:
        response.headers.append("set-cookie", value)


def _email_key(email: str) -> str:
    # Hashed: the raw address never becomes a Redis key name.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


async def _limit_password_check(request: Request, settings: Settings, email: str) -> None:
    """One attempt at an account's password (login, token, password change), counted before
    anything is hashed: every such route spends the same budgets, the client's and the
    account's, so a stolen session adds no guesses to what login allows."""
    n, w = settings.rate_limit_login_attempts, settings.rate_limit_login_window
    await enforce(
        request,
        [("login-ip", client_key(request), n, w), ("login-email", _email_key(email), n, w)],
    )


async def _limit_register(request: Request, s: Settings) -> None:
    await enforce(
        request,
        [
            (
                "register-ip",
                client_key(request),
                s.rate_limit_register_attempts,
                s.rate_limit_register_window,
            )
        ],
    )


@router.post(
    "/register",
    status_code=201,
    response_model=Envelope[RegisterResult],
    operation_id="auth.register",
)
@raises(EmailTaken, RateLimited, DependencyUnavailable)
async def register(
    body: RegisterRequest, request: Request, db: DbSession, audit: Audit, settings: AppSettings
) -> dict[str, Any]:
    """Create an account (role `viewer`)."""
    await _limit_register(request, settings)
    user = await sign_in.register(
        db,
        audit,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
    )
    return envelope.ok({"user": service.user_read(user)}, "Account created")


@router.post(
    "/login", response_model=Envelope[TokenPair | CookieSession], operation_id="auth.login"
)
@raises(InvalidCredentials, AccountDisabled, CsrfFailed, RateLimited, DependencyUnavailable)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    db: DbSession,
    auth: Auth,
    audit: Audit,
    tokens: Tokens,
    policy: Policy,
    settings: AppSettings,
) -> dict[str, Any]:
    """Exchange email and password for an access and a refresh token (`mode: bearer`), or
    open a cookie session (`mode: cookie`): HttpOnly session cookie, CSRF cookie and token."""
    grant: CookieGrant | None = None
    if body.mode == "cookie":
        # Login CSRF: a foreign page must not log this browser into another account.
        policy.check_origin(request, required=False)
        grant = CookieGrant.new()
    await _limit_password_check(request, settings, body.email)
    pair = await sign_in.login(
        db,
        auth,
        audit,
        email=body.email,
        password=body.password,
        cookie=grant,
    )
    if grant is None:
        return envelope.ok(pair, "Logged in")
    claims = tokens.verify(pair.refresh_token, "refresh")
    _set_cookies(
        response, policy.set_cookies(grant.cookie_value(claims.sub, claims.sid), grant.csrf)
    )
    session = CookieSession(csrf_token=grant.csrf, expires_in=policy.max_age, user=pair.user)
    return envelope.ok(session, "Logged in")


OAUTH_ERRORS: dict[OAuthErrorCode, str] = {
    "invalid_request": "A parameter is missing (`username` or `password`)",
    "unsupported_grant_type": "`grant_type` is not `password`",
    "invalid_grant": "Wrong email or password, or the account is disabled",
}


def _oauth_error(error: OAuthErrorCode) -> Response:
    """An RFC 6749 §5.2 error: 400 and `{"error": ...}`, not the envelope."""
    return RawJSONResponse(OAuthError(error=error).model_dump(), status_code=400, headers=NO_STORE)


@router.post(
    "/token",
    response_model=OAuthTokenResponse,
    operation_id="auth.token",
    responses={
        400: {
            "model": OAuthError,
            "description": "RFC 6749 §5.2 error: "
            + ", ".join(f"`{error}`" for error in OAUTH_ERRORS),
            "content": {
                "application/json": {
                    "examples": {
                        error: {"summary": text, "value": {"error": error}}
                        for error, text in OAUTH_ERRORS.items()
                    }
                }
            },
        }
    },
)
@raises(RateLimited, DependencyUnavailable)
async def token(
    request: Request,
    db: DbSession,
    auth: Auth,
    audit: Audit,
    settings: AppSettings,
    form: Annotated[TokenForm, Form()],
) -> Response:
    """OAuth2 password grant (RFC 6749 §4.3) for Swagger's Authorize button: a plain RFC 6749
    response, no envelope. Any `grant_type` but `password` is `unsupported_grant_type`; none
    at all is the password grant, the form CONTRACT.md gives scripts (`username`, `password`)."""
    if form.grant_type not in (None, "password"):
        return _oauth_error("unsupported_grant_type")
    if form.username is None or form.password is None:
        return _oauth_error("invalid_request")
    try:
        email = login_email(form.username)
    except ValueError:
        return _oauth_error("invalid_grant")
    try:
        await _limit_password_check(request, settings, email)
        pair = await sign_in.login(
            db,
            auth,
            audit,
            email=email,
            password=form.password,
        )
    except InvalidCredentials:
        return _oauth_error("invalid_grant")
    except StudioError as exc:
        if exc.status_code in (401, 403):
            return _oauth_error("invalid_grant")
        raise
    body = OAuthTokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )
    return RawJSONResponse(body.model_dump(), headers=NO_STORE)


@router.post(
    "/refresh",
    response_model=Envelope[TokenPair],
    dependencies=[Depends(refresh_scheme)],
    operation_id="auth.refresh",
)
@raises(*answers.REFRESH)
async def refresh(request: Request, db: DbSession, auth: Auth, audit: Audit) -> dict[str, Any]:
    """Rotate: a new pair; the presented refresh token never works again."""
    pair = await renewal.refresh(db, auth, audit, bearer_token(request))
    return envelope.ok(pair, "Tokens refreshed")


@router.post(
    "/logout", response_model=Envelope[None], dependencies=CREDENTIALS, operation_id="auth.logout"
)
# It authenticates itself: a cookie whose session is gone (or past its lifetime) still logs out.
@raises(*answers.BEARER, AccountDisabled, CsrfFailed)
async def logout(
    request: Request, response: Response, db: DbSession, auth: Auth, audit: Audit, policy: Policy
) -> dict[str, Any]:
    """End this session; its tokens stop working at once, and a session cookie is cleared."""
    by_cookie = "authorization" not in request.headers and policy.has_session_cookie(request)
    try:
        principal = await authenticate(request)
    except Unauthorized:
        if not by_cookie:
            raise
        # The cookie's session is already gone: still clear the browser's cookies.
        _set_cookies(response, policy.clear_cookies())
        return envelope.ok(None, "Logged out")
    await revocation.logout(db, auth, audit, principal)
    if by_cookie:
        _set_cookies(response, policy.clear_cookies())
    return envelope.ok(None, "Logged out")


@router.get("/me", response_model=Envelope[UserRead], operation_id="auth.me")
@raises(SessionRevoked, AccountDisabled)
async def me(principal: CurrentPrincipal, db: DbSession, auth: Auth) -> dict[str, Any]:
    """The caller's account, roles and permissions (ACCOUNT_DISABLED once it is disabled)."""
    user = await service.active_user(db, auth, principal)
    read = service.user_read(user)
    # Permissions as the session holds them: what this token can actually do right now.
    read.roles, read.permissions = sorted(principal.roles), sorted(principal.permissions)
    return envelope.ok(read)


@router.get("/csrf", response_model=Envelope[CsrfTokenRead], operation_id="auth.csrf")
async def csrf(
    _: CurrentPrincipal, request: Request, response: Response, policy: Policy
) -> dict[str, Any]:
    """The cookie session's CSRF token (a front-end on another host cannot read Studio's
    cookies); the CSRF cookie is set again. Null for a Bearer caller."""
    token: str | None = request.scope["state"].get("csrf_token")
    if token:
        left = request.scope["state"]["session_seconds_left"]
        _set_cookies(response, [policy.csrf_cookie(token, max_age=left)])
    return envelope.ok(CsrfTokenRead(csrf_token=token))


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@router.get("/sessions", response_model=Envelope[SessionsResult], operation_id="auth.sessions.list")
async def sessions(principal: CurrentPrincipal, store: Sessions) -> dict[str, Any]:
    """The caller's live sessions."""
    items = await store.live(principal.user_id)
    return envelope.ok(
        SessionsResult(
            sessions=[
                SessionRead(
                    id=s.session_id,
                    current=s.session_id == principal.session_id,
                    client_ip=s.client_ip,
                    user_agent=s.user_agent,
                    created_at=_ts(s.created_at),
                    last_seen_at=_ts(s.last_seen_at),
                )
                for s in items
            ]
        )
    )


@router.delete(
    "/sessions/{sid}", response_model=Envelope[None], operation_id="auth.sessions.delete"
)
@raises(NotFound)
async def revoke_session(
    sid: str, principal: CurrentPrincipal, db: DbSession, auth: Auth, audit: Audit
) -> dict[str, Any]:
    """Revoke one of the caller's sessions (someone else's is NOT_FOUND)."""
    if not await revocation.revoke_session(db, auth, audit, principal, sid):
        raise NotFound("Session not found")
    return envelope.ok(None, "Session revoked")


@router.post(
    "/password", response_model=Envelope[PasswordChanged], operation_id="auth.password.change"
)
@raises(InvalidCredentials, SessionRevoked, RateLimited)
async def change_password(
    body: PasswordChangeRequest,
    principal: CurrentPrincipal,
    request: Request,
    db: DbSession,
    auth: Auth,
    audit: Audit,
    settings: AppSettings,
) -> dict[str, Any]:
    """Change the password; every other session is revoked."""
    await _limit_password_check(request, settings, principal.email)
    revoked = await revocation.change_password(
        db,
        auth,
        audit,
        principal,
        current=body.current_password,
        new=body.new_password,
    )
    return envelope.ok({"revoked_sessions": revoked}, "Password changed")
