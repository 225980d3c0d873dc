"""Authentication: a Bearer access token or the session cookie -> Redis session -> Principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from app.audit.service import AuditContext
from app.auth import cookies, sessions
from app.auth.cookies import CookiePolicy
from app.auth.errors import SessionRevoked, TokenInvalid
from app.auth.reconcile import Reconciler
from app.auth.renewal import refresh_cookie_session
from app.auth.service import AuthContext
from app.auth.session_cache import SessionCache
from app.auth.session_data import CookieSessionFields, SessionFields
from app.auth.sessions import SessionStore
from app.auth.tokens import TokenService
from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.redis import RedisClient
from app.identity.dependencies import IDENTIFY
from app.identity.principal import Principal
from app.ratelimit.service import RateLimiter


@dataclass(frozen=True, slots=True)
class AuthState:
    """What authentication shares with every request, built once by the lifespan."""

    tokens: TokenService
    session_store: SessionStore
    context: AuthContext
    cookie_policy: CookiePolicy
    rate_limiter: RateLimiter

    def request_state(self) -> dict[str, Any]:
        """Its entries of each request's state, `IDENTIFY` among them."""
        return {
            "tokens": self.tokens,
            "session_store": self.session_store,
            "auth": self.context,
            "cookie_policy": self.cookie_policy,
            "rate_limiter": self.rate_limiter,
            IDENTIFY: authenticate,
        }


def build_auth_state(
    settings: Settings, redis: RedisClient, listener: RedisClient | None = None
) -> AuthState:
    """The auth objects; `listener` is the Redis client the session cache subscribes with
    (default: `redis`)."""
    tokens = TokenService(settings)
    # Built even when it keeps nothing (`SESSION_CACHE_SECONDS=0`): its channel carries every
    # session change to the other instances' listeners.
    channel = f"{settings.redis_key_prefix}session-invalidations"
    cache = SessionCache(redis, channel, settings.session_cache_seconds, listener)
    store = SessionStore(
        redis,
        settings.redis_key_prefix,
        settings.jwt_refresh_token_expire_seconds,
        cache,
        settings.session_max_lifetime_seconds,
    )
    # No session outlives its max lifetime: past that, a pending revoke has nothing left to do.
    reconciler = Reconciler(retry_for=settings.session_max_lifetime_seconds)
    return AuthState(
        tokens=tokens,
        session_store=store,
        context=AuthContext(tokens=tokens, sessions=store, reconciler=reconciler),
        cookie_policy=CookiePolicy.from_settings(settings),
        rate_limiter=RateLimiter(redis, settings.redis_key_prefix),
    )


def auth_context(request: Request) -> AuthContext:
    return request.state.auth  # type: ignore[no-any-return]


def session_store(request: Request) -> SessionStore:
    return request.state.session_store  # type: ignore[no-any-return]


def tokens_of(request: Request) -> TokenService:
    return request.state.tokens  # type: ignore[no-any-return]


def cookie_policy(request: Request) -> CookiePolicy:
    return request.state.cookie_policy  # type: ignore[no-any-return]


Auth = Annotated[AuthContext, Depends(auth_context)]
Sessions = Annotated[SessionStore, Depends(session_store)]
Tokens = Annotated[TokenService, Depends(tokens_of)]
Policy = Annotated[CookiePolicy, Depends(cookie_policy)]


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer <token>`; UNAUTHORIZED when absent or another scheme."""
    return _bearer(request.headers.get("authorization"))


def _bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Bearer token required")
    return token.strip()


async def authenticate(request: Request) -> Principal:
    """The caller behind the Bearer access token or, without an Authorization header, the
    session cookie; permissions come from the live session."""
    state = request.state
    header = request.headers.get("authorization")
    if header is None:  # a Bearer header always wins
        policy: CookiePolicy | None = request.scope["state"].get("cookie_policy")
        if policy is not None and policy.has_session_cookie(request):
            return await _cookie_principal(request, policy)
    claims = state.tokens.verify(_bearer(header), "access")
    store: SessionStore = state.session_store
    fields = await store.principal_fields(claims.sub, claims.sid)
    if fields.user_id is None or fields.user_id.decode() != claims.sub:
        raise SessionRevoked()
    return _principal(request, claims.sub, claims.sid, fields)


def _principal(
    request: Request, user_id: str, sid: str, fields: SessionFields | CookieSessionFields
) -> Principal:
    request.scope["state"]["user_id"] = user_id
    return Principal(
        user_id=user_id,
        email=(fields.email or b"").decode(),
        session_id=sid,
        roles=tuple(r for r in (fields.roles or b"").decode().split(",") if r),
        permissions=frozenset(orjson.loads(fields.permissions or b"[]")),
    )


async def _cookie_principal(request: Request, policy: CookiePolicy) -> Principal:
    """Cookie mode: check the cookie's secret, CSRF on state-changing methods, and renew an
    expired access grant with the session's own refresh token before answering."""
    unsafe = request.method not in cookies.SAFE_METHODS
    if unsafe:  # cheap checks first: a forged request never costs a Redis round trip
        policy.check_origin(request, required=True)
        policy.check_double_submit(request)
    cookie = policy.session_cookie(request)
    if cookie is None:
        raise TokenInvalid("Session cookie is invalid")
    store: SessionStore = request.state.session_store
    uid, sid = cookie.user_id, cookie.session_id
    fields = await store.principal_fields(uid, sid, CookieSessionFields)
    if fields.user_id is None or fields.user_id.decode() != uid or fields.mode != b"cookie":
        raise SessionRevoked()
    if not cookies.secret_matches(cookie, fields.secret_hash):
        raise TokenInvalid("Session cookie is invalid")
    if unsafe:  # bound to the session: a planted cookie fails here
        policy.check_bound(request, fields.csrf)
    request.scope["state"].update(
        auth_mode="cookie",
        csrf_token=(fields.csrf or b"").decode(),
        session_seconds_left=int(store.ends_at(float(fields.created_at or 0)) - sessions.clock()),
    )
    expires = fields.access_expires_at
    if expires is None or float(expires) <= cookies.clock():
        await _renew(request, uid, sid)
        # The renewal carried the user's current grants: answer with them.
        fields = await store.principal_fields(uid, sid, CookieSessionFields)
        if fields.user_id is None:
            raise SessionRevoked()
    return _principal(request, uid, sid, fields)


async def _renew(request: Request, user_id: str, sid: str) -> None:
    state = request.state
    async with state.sessions() as db:
        await refresh_cookie_session(
            db, state.auth, AuditContext.from_request(request), user_id, sid
        )
