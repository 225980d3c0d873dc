"""Account flows: register, login, refresh, logout, password change."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.service import Action, AuditContext
from app.auth import accounts, cookies, passwords, sessions
from app.auth.cookies import CookieGrant
from app.auth.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    SessionExpired,
    SessionRevoked,
    TokenExpired,
    TokenInvalid,
    TokenReused,
)
from app.auth.models import User
from app.auth.reconcile import Reconciler
from app.auth.schemas import TokenPair, UserRead
from app.auth.sessions import Grants, SessionStore
from app.auth.tokens import TokenService
from app.core.logging import get_logger
from app.core.types import utcnow
from app.identity.principal import Principal
from app.rbac import service as rbac

log = get_logger("studio.auth")


@dataclass(frozen=True, slots=True)
class AuthContext:
    """What the flows need from the running app."""

    tokens: TokenService
    sessions: SessionStore
    reconciler: Reconciler

    async def end_sessions(self, user_id: str, *, except_sid: str | None = None) -> int | None:
        """Revoke the user's sessions (but `except_sid`) after a committed change: retried, and
        finished in the background when Redis refuses; the count, or None when deferred."""
        counted: list[int] = []

        async def job() -> None:
            counted.append(await self.sessions.revoke_all(user_id, except_sid=except_sid))

        done = await self.reconciler.run("revoke", job, user_id=user_id, except_sid=except_sid)
        return counted[-1] if done else None

    async def push_grants(self, user_id: str, grants: Grants) -> None:
        """Give the user's live sessions a committed change of grants (as `end_sessions`)."""
        await self.reconciler.run(
            "grants",
            lambda: self.sessions.update_grants(
                user_id, grants.roles, grants.permissions, grants.version
            ),
            user_id=user_id,
            version=grants.version,
        )


def user_read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        is_active=user.is_active,
        roles=sorted(r.name for r in user.roles),
        permissions=rbac.permissions_of(user.roles),
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


async def get_user(db: AsyncSession, user_id: str | uuid.UUID) -> User | None:
    try:
        ident = uuid.UUID(str(user_id))
    except ValueError:
        return None
    return await db.get(User, ident)


async def register(
    db: AsyncSession, ctx: AuditContext, *, email: str, password: str, full_name: str | None
) -> User:
    """Create an active viewer account; EMAIL_TAKEN when the email is in use."""
    if await db.scalar(select(func.count()).select_from(User).where(User.email == email)):
        await _audit_alone(
            db, ctx.by(None, email), Action.REGISTER, email, "failure", "email_taken"
        )
        raise EmailTaken()
    user = User(
        email=email,
        password_hash=await passwords.hash_password(password),
        full_name=full_name,
        roles=await rbac.roles_named(db, [rbac.DEFAULT_ROLE]),
    )
    db.add(user)
    try:
        await db.flush()
        await audit.record(db, ctx.by(user.id, email), Action.REGISTER, target=str(user.id))
        await db.commit()
    except IntegrityError:
        await db.rollback()  # lost a race with a concurrent registration of the same email
        await _audit_alone(
            db, ctx.by(None, email), Action.REGISTER, email, "failure", "email_taken"
        )
        raise EmailTaken() from None
    return user


async def _audit_alone(
    db: AsyncSession, ctx: AuditContext, action: str, target: str | None, outcome: str, reason: str
) -> None:
    """Record a refused attempt in a transaction of its own (nothing else changed)."""
    await audit.record(db, ctx, action, target=target, outcome=outcome, details={"reason": reason})
    await db.commit()


async def login(
    db: AsyncSession,
    auth: AuthContext,
    ctx: AuditContext,
    *,
    email: str,
    password: str,
    cookie: CookieGrant | None = None,
) -> TokenPair:
    """Verify the password (same cost for unknown emails), open a session, issue tokens.

    `email` is in its stored form (`login_email`). With `cookie`, the session is a cookie-mode
    one: its refresh token stays in Redis.
    """
    account = await accounts.find_account(db, email)
    # Hashing can queue behind a storm of logins: no pooled connection is held meanwhile.
    await db.rollback()
    stored = account.password_hash if account else await passwords.DummyHash.get()
    ok, new_hash = await passwords.verify_password(password, stored)
    if account is None or not ok:
        await _audit_alone(
            db,
            ctx.by(account.id if account else None, email),
            Action.LOGIN,
            email,
            "failure",
            "bad_credentials",
        )
        raise InvalidCredentials()
    now = utcnow()
    changes: dict[str, object] = {"last_login_at": now, "updated_at": now}
    if new_hash:
        changes["password_hash"] = new_hash  # outdated parameters or scheme: upgraded
    # The write re-checks is_active and locks the row until commit: an account disabled while
    # its password was being hashed gets no session, and a change of grants committed meanwhile
    # shows in the version (the roles are then read again). One that comes later waits for the
    # lock, so it finds this login's session in Redis and updates it.
    account_id = account.id
    version = None
    if account.is_active:
        version = await accounts.record_login(db, account_id, changes)
    if version is not None and version != account.grants_version:
        account = await accounts.find_account_by_id(db, account_id)
    if version is None or account is None:
        await db.rollback()
        await _audit_alone(
            db, ctx.by(account_id, email), Action.LOGIN, str(account_id), "failure", "disabled"
        )
        raise AccountDisabled()
    user_id = str(account.id)
    grants = Grants(account.roles, account.permissions, version)
    pair = await open_session(auth, user_id, account.email, grants, ctx, cookie)
    try:
        await audit.record(
            db,
            ctx.by(account.id, email),
            Action.LOGIN,
            target=user_id,
            details={"mode": "cookie"} if cookie else None,
        )
        await db.commit()
    except SQLAlchemyError:
        sid = auth.tokens.verify(pair.access_token, "access").sid
        await auth.sessions.revoke(user_id, sid)
        raise
    return pair.model_copy(update={"user": account.read(now)})


async def open_session(
    auth: AuthContext,
    user_id: str,
    email: str,
    grants: Grants,
    ctx: AuditContext,
    cookie: CookieGrant | None = None,
) -> TokenPair:
    """A new Redis session with the user's permission snapshot, and its first token pair;
    neither outlives the session's max lifetime."""
    sid = secrets.token_hex(16)
    started = sessions.clock()
    ends = auth.sessions.ends_at(started)
    refresh = auth.tokens.issue("refresh", user_id=user_id, session_id=sid, not_after=ends)
    extra = None
    if cookie is not None:
        extra = {
            "mode": "cookie",
            "csec": cookie.secret_hash,
            "csrf": cookie.csrf,
            "rtok": refresh.token,
            "aexp": f"{min(cookies.clock() + auth.tokens.ttl('access'), ends):.3f}",
        }
    await auth.sessions.create(
        user_id=user_id,
        email=email,
        grants=grants,
        refresh_jti=refresh.jti,
        client_ip=ctx.client_ip,
        user_agent=ctx.user_agent,
        started_at=started,
        session_id=sid,
        extra=extra,
    )
    access = auth.tokens.issue("access", user_id=user_id, session_id=sid, not_after=ends)
    return TokenPair(
        access_token=access.token,
        refresh_token=refresh.token,
        expires_in=access.expires_in,
        refresh_expires_in=refresh.expires_in,
    )


async def current_grants(db: AsyncSession, auth: AuthContext, user_id: str, sid: str) -> Grants:
    """The user's grants as the database has them now, for a refresh of session `sid`. A user
    that is gone is SESSION_REVOKED; a disabled one ACCOUNT_DISABLED, and its sessions are ended
    (again: a revoke after the disable may have been lost), or SESSION_REVOKED when this
    session already was."""
    try:
        account = await accounts.find_account_by_id(db, uuid.UUID(user_id))
    except ValueError:
        account = None
    await _safe_rollback(db)  # a read: no connection held while Redis is asked
    if account is None:
        raise SessionRevoked()
    if not account.is_active:
        if await auth.sessions.load(user_id, sid) is None:
            raise SessionRevoked()
        await auth.end_sessions(user_id)
        raise AccountDisabled()
    return Grants(account.roles, account.permissions, account.grants_version)


async def active_user(db: AsyncSession, auth: AuthContext, principal: Principal) -> User:
    """The caller's account, which must still be active (else its sessions end, as in
    `current_grants`)."""
    user = await get_user(db, principal.user_id)
    if user is None:
        raise SessionRevoked()
    if not user.is_active:
        await auth.end_sessions(principal.user_id)
        raise AccountDisabled()
    return user


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
    if outcome == 0:
        raise SessionRevoked()
    if outcome == -2:
        raise TokenInvalid()
    if outcome == -3:
        await _audit_best_effort(db, actor, Action.REFRESH, claims.sid, "failure")
        raise SessionExpired()
    if outcome < 0:
        await _audit_best_effort(db, actor, Action.TOKEN_REUSE, claims.sid, "failure")
        raise TokenReused()
    new = auth.tokens.issue(
        "refresh", user_id=claims.sub, session_id=claims.sid, jti=new_jti, not_after=ends
    )
    access = auth.tokens.issue("access", user_id=claims.sub, session_id=claims.sid, not_after=ends)
    await _audit_best_effort(db, actor, Action.REFRESH, claims.sid, "success")
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
    others see the rotation and go on (2); SESSION_REVOKED when the session is gone,
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
    if outcome == 0:
        raise SessionRevoked()
    if outcome == -3:
        raise SessionExpired()
    if outcome == 1:
        await _audit_best_effort(db, ctx.by(user_id, None), Action.REFRESH, sid, "success")


async def _audit_best_effort(
    db: AsyncSession, ctx: AuditContext, action: str, target: str, outcome: str
) -> None:
    # The change itself lives in Redis: an unreachable database must not undo a rotation, so
    # the event then goes to the error log in full instead.
    try:
        await audit.record(db, ctx, action, target=target, outcome=outcome)
        await db.commit()
    except (SQLAlchemyError, OSError):
        await _safe_rollback(db)
        log.error(
            "audit write failed",
            action=action,
            target=target,
            outcome=outcome,
            actor_id=str(ctx.actor_id),
            client_ip=ctx.client_ip,
        )


async def _safe_rollback(db: AsyncSession) -> None:
    with contextlib.suppress(SQLAlchemyError, OSError):
        await db.rollback()


async def logout(
    db: AsyncSession, auth: AuthContext, ctx: AuditContext, principal: Principal
) -> None:
    """End the caller's session at once."""
    await auth.sessions.revoke(principal.user_id, principal.session_id)
    await _audit_best_effort(
        db,
        ctx.by(principal.user_id, principal.email),
        Action.LOGOUT,
        principal.session_id,
        "success",
    )


async def revoke_session(
    db: AsyncSession, auth: AuthContext, ctx: AuditContext, principal: Principal, sid: str
) -> bool:
    """Revoke one of the caller's own sessions; False when it is not theirs or gone."""
    if sid not in await auth.sessions.session_ids(principal.user_id):
        return False
    revoked = await auth.sessions.revoke(principal.user_id, sid)
    if revoked:
        await _audit_best_effort(
            db, ctx.by(principal.user_id, principal.email), Action.SESSION_REVOKE, sid, "success"
        )
    return revoked


async def change_password(
    db: AsyncSession,
    auth: AuthContext,
    ctx: AuditContext,
    principal: Principal,
    *,
    current: str,
    new: str,
) -> int:
    """Check the current password, store the new one, revoke every other session."""
    user = await get_user(db, principal.user_id)
    if user is None:
        raise SessionRevoked()
    ok, _ = await passwords.verify_password(current, user.password_hash)
    actor = ctx.by(user.id, user.email)
    if not ok:
        await _audit_alone(
            db, actor, Action.PASSWORD_CHANGE, str(user.id), "failure", "bad_password"
        )
        raise InvalidCredentials("Current password is incorrect")
    user.password_hash = await passwords.hash_password(new)
    await accounts.bump_grants(db, [user.id])
    await audit.record(db, actor, Action.PASSWORD_CHANGE, target=str(user.id))
    await db.commit()
    revoked = await auth.end_sessions(principal.user_id, except_sid=principal.session_id)
    return revoked or 0
