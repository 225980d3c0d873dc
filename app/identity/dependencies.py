"""`current_principal` and `require(permission)`: RBAC from the session, no database on the way.

`identify(request)` is the one identity function: the proxy and every route reach the caller
through it. It calls the authenticator the auth domain put in the app's state (`IDENTIFY`), so
this module knows no token, session or cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, OAuth2PasswordBearer

from app.core.errors import Forbidden
from app.core.raises import raises
from app.identity.principal import Principal

Authenticator = Callable[[Request], Awaitable[Principal]]
IDENTIFY = "identify"  # the lifespan state's key for the authenticator
SESSION_COOKIE = "studio_session"  # the session cookie's dev name (`__Host-` prefixed elsewhere)


async def identify(request: Request) -> Principal:
    """The caller of this request (401 errors from the authenticator when there is none)."""
    authenticator: Authenticator = request.scope["state"][IDENTIFY]
    return await authenticator(request)


# Declared for OpenAPI (Swagger's Authorize button and the cookie session); the credentials
# are read by the authenticator.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="auth/token",
    scheme_name="Bearer",
    description="`Authorization: Bearer <access token>` from `POST /auth/login` (mode bearer) "
    "or, for Swagger's Authorize button, the password grant of `POST /auth/token`. It wins "
    "over the session cookie when both are sent.",
    auto_error=False,
)
session_cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="SessionCookie",
    description="The HttpOnly session cookie set by `POST /auth/login` with "
    '`{"mode": "cookie"}` (`__Host-studio_session` outside dev). State-changing requests '
    "(POST, PUT, PATCH, DELETE) also need `X-CSRF-Token` (scheme `CsrfHeader`) equal to the "
    "`studio_csrf` cookie and an allowed `Origin`, else 403 `CSRF_FAILED`.",
    auto_error=False,
)


async def current_principal(
    request: Request,
    _: Annotated[str | None, Depends(oauth2_scheme)] = None,
    __: Annotated[str | None, Depends(session_cookie_scheme)] = None,
) -> Principal:
    return await identify(request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
# For a route that identifies the caller itself: documents both ways to sign in.
CREDENTIALS = [Depends(oauth2_scheme), Depends(session_cookie_scheme)]


def authorize(principal: Principal, permission: str) -> None:
    """The one permission check: `require` and the proxy both use it."""
    if not principal.can(permission):
        raise Forbidden(f"Missing permission {permission}", details={"permission": permission})


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that passes the principal through when it holds `permission`."""

    @raises(Forbidden)
    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        authorize(principal, permission)
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_').replace('*', 'any')}"
    return dependency
