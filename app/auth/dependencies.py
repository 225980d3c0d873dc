"""Authentication dependencies: Bearer access token -> Redis session -> Principal."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth.principal import Principal
from app.auth.service import AuthContext
from app.auth.sessions import SessionStore
from app.auth.tokens import TokenService
from app.core.config import Settings
from app.core.errors import SessionRevoked, Unauthorized
from app.ratelimit.service import RateLimiter


def build_auth_state(settings: Settings, redis: Any) -> dict[str, Any]:
    """The auth objects the lifespan shares with every request."""
    tokens = TokenService(settings)
    sessions = SessionStore(
        redis, settings.redis_key_prefix, settings.jwt_refresh_token_expire_seconds
    )
    return {
        "tokens": tokens,
        "session_store": sessions,
        "auth": AuthContext(tokens=tokens, sessions=sessions),
        "rate_limiter": RateLimiter(redis, settings.redis_key_prefix),
    }


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer <token>`; UNAUTHORIZED when absent or another scheme."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Bearer token required")
    return token.strip()


async def authenticate(request: Request) -> Principal:
    """The caller behind the access token, with permissions from its live session."""
    state = request.state
    claims = state.tokens.verify(bearer_token(request), "access")
    store: SessionStore = state.session_store
    uid, email, roles, perms, _ = await store.principal_fields(claims.sub, claims.sid)
    if uid is None or uid.decode() != claims.sub:
        raise SessionRevoked()
    principal = Principal(
        user_id=claims.sub,
        email=(email or b"").decode(),
        session_id=claims.sid,
        roles=tuple(r for r in (roles or b"").decode().split(",") if r),
        permissions=frozenset(orjson.loads(perms or b"[]")),
    )
    request.scope["state"]["user_id"] = claims.sub
    return principal


# Declared for OpenAPI (Swagger's Authorize button); the token is read by `authenticate`.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="auth/token", auto_error=False)


async def current_principal(
    request: Request, _: Annotated[str | None, Depends(oauth2_scheme)] = None
) -> Principal:
    return await authenticate(request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def tokens_of(request: Request) -> TokenService:
    return request.state.tokens  # type: ignore[no-any-return]
