"""Who opens the socket and whether they may: checked in full before any downstream connection.

Scripts send `Authorization: Bearer <access token>`. Browsers cannot set headers on a
WebSocket, so they come with the session cookie, and a cookie upgrade must carry an `Origin`
that is in CORS_ALLOW_ORIGINS or is Studio's own: a page elsewhere would otherwise ride the
user's cookie (cross-site WebSocket hijacking). A token in the query string is refused, not
ignored: it would sit in access logs and reach the downstream's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Scope

from app.auth.cookies import CookiePolicy
from app.core.errors import Unauthorized
from app.identity.dependencies import authorize
from app.identity.principal import Principal

Authenticator = Callable[[Request], Awaitable[Principal]]
QUERY_TOKENS = frozenset(("access_token", "token", "jwt", "bearer"))


def http_view(scope: Scope) -> Scope:
    """The upgrade request as an HTTP GET scope, for the HTTP authenticator (same state)."""
    view = dict(scope)
    view["type"] = "http"
    view["method"] = "GET"
    view["scheme"] = "https" if scope.get("scheme") == "wss" else "http"
    return view


def refuse_query_tokens(query_string: bytes) -> None:
    """UNAUTHORIZED when the query string carries something named like a token."""
    if not query_string:
        return
    names = {k.lower() for k, _ in parse_qsl(query_string.decode("latin-1"), True)}
    if names & QUERY_TOKENS:
        raise Unauthorized("Tokens in the query string are not accepted")


async def admit(
    scope: Scope, identify: Authenticator, permission: str, cookies: CookiePolicy
) -> Principal:
    """The caller of an upgrade that may use `permission` (401, 403 otherwise)."""
    refuse_query_tokens(scope.get("query_string", b""))
    request = Request(http_view(scope))
    if "authorization" not in request.headers and cookies.session_name in request.cookies:
        # As for a cookie write, Studio's own origin as a trusted proxy states it; before
        # Redis: a forged upgrade costs nothing.
        cookies.check_origin(request, required=True)
    principal = await identify(request)
    authorize(principal, permission)
    return principal
