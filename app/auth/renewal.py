"""Keeping a session going: rotate a Bearer refresh token, renew a cookie session's access
grant; either way the session takes the user's grants as the database has them now."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Action, AuditContext
from app.auth import accounts, cookies
from app.auth.errors import (
    AccountDisabled,
    SessionExpired,
    SessionRevoked,
    TokenExpired,
    TokenInvalid,
    TokenReused,
)
from app.auth.schemas import TokenPair
from app.auth.service import AuthContext, audit_best_effort, safe_rollback
from app.auth.session_data import Grants
from app.auth.session_scripts import CookieRotation, Rotation


async def current_grants(db: AsyncSession, auth: AuthContext, user_id: str, sid: str) -> Grants:
    """The user's grants as the database has them now, for a refresh of session `sid`. A user
    that is gone is SESSION_REVOKED; a disabled one ACCOUNT_DISABLED, and its sessions are ended
    (again: a revoke after the disable may have been lost), or SESSION_REVOKED when this
    session already was."""
    try:
        account = await accounts.find_account_by_id(db, uuid.UUID(user_id))
    except ValueError:
        account = None
    await safe_rollback(db)  # a read: no connection held while Redis is asked
    if account is None:
        raise SessionRevoked()
    if not account.is_active:
        if await auth.sessions.load(user_id, sid) is None:
            raise SessionRevoked()
        await auth.end_sessions(user_id)
        raise AccountDisabled()
    return Grants(account.roles, account.permissions, account.grants_version)


async def refresh(db: AsyncSession, auth: AuthContext, ctx: AuditContext, token: str) -> TokenPair:
    """Rotate the refresh token; a reused one revokes the whole session (RFC 9700 §4.14). The
    user must still be active; the session takes its current grants; nothing issued outlives
    the session's max lifetime (SESSION_EXPIRED after it)."""
    try:
        claims = auth.tokens.verify(token, "refresh")
    except TokenExpired:
        if auth.tokens.cut_short(token, "refresh"):
            raise SessionExpired() from None
        raise
    grants = await current_grants(db, auth, claims.sub, claims.sid)
    new_jti = secrets.token_hex(16)
    outcome, ends = await auth.sessions.rotate(claims.sub, claims.sid, claims.jti, new_jti, grants)
    actor = ctx.by(claims.sub, None)
    match outcome:
        case Rotation.GONE:
            raise SessionRevoked()
        case Rotation.COOKIE_SESSION:
            raise TokenInvalid()
        case Rotation.EXPIRED:
            await audit_best_effort(db, actor, Action.REFRESH, claims.sid, "failure")
            raise SessionExpired()
        case Rotation.REUSED:
            await audit_best_effort(db, actor, Action.TOKEN_REUSE, claims.sid, "failure")
            raise TokenReused()
        case Rotation.ROTATED:
            pass
    new = auth.tokens.issue(
        "refresh", user_id=claims.sub, session_id=claims.sid, jti=new_jti, not_after=ends
    )
    access = auth.tokens.issue("access", user_id=claims.sub, session_id=claims.sid, not_after=ends)
    await audit_best_effort(db, actor, Action.REFRESH, claims.sid, "success")
    return TokenPair(
        access_token=access.token,
        refresh_token=new.token,
        expires_in=access.expires_in,
        refresh_expires_in=new.expires_in,
    )


async def refresh_cookie_session(
    db: AsyncSession, auth: AuthContext, ctx: AuditContext, user_id: str, sid: str
) -> None:
    """Renew a cookie session's access grant with the refresh token it keeps server-side, and
    give it the user's current grants (as `refresh`).

    Parallel requests of one browser may all find the grant expired: the first rotates, the
    others see the rotation and go on (RACED); SESSION_REVOKED when the session is gone,
    SESSION_EXPIRED past its max lifetime.
    """
    stored, ends = await auth.sessions.cookie_refresh_state(user_id, sid)
    if stored is None:
        raise SessionRevoked()
    try:
        claims = auth.tokens.verify(stored, "refresh")
    except TokenExpired:
        if auth.tokens.cut_short(stored, "refresh"):
            raise SessionExpired() from None
        raise SessionRevoked() from None
    except TokenInvalid:
        raise SessionRevoked() from None
    if claims.sub != user_id or claims.sid != sid:
        raise SessionRevoked()
    grants = await current_grants(db, auth, user_id, sid)
    new = auth.tokens.issue("refresh", user_id=user_id, session_id=sid, not_after=ends)
    expires_at = cookies.clock() + auth.tokens.ttl("access")
    outcome = await auth.sessions.rotate_cookie(
        user_id, sid, claims.jti, new.jti, new.token, expires_at, grants
    )
    match outcome:
        case CookieRotation.GONE:
            raise SessionRevoked()
        case CookieRotation.EXPIRED:
            raise SessionExpired()
        case CookieRotation.ROTATED:
            await audit_best_effort(db, ctx.by(user_id, None), Action.REFRESH, sid, "success")
        case CookieRotation.RACED:
            pass  # the request that rotated first renewed the grant, and recorded it
