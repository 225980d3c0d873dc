"""The way in: register an account, log in, and open the session a login leads to."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.service import Action, AuditContext
from app.auth import accounts, cookies, passwords, sessions
from app.auth.cookies import CookieGrant
from app.auth.errors import AccountDisabled, EmailTaken, InvalidCredentials
from app.auth.models import User
from app.auth.schemas import TokenPair
from app.auth.service import AuthContext, audit_alone
from app.auth.session_data import Grants
from app.core.types import utcnow
from app.rbac import service as rbac


async def register(
    db: AsyncSession, ctx: AuditContext, *, email: str, password: str, full_name: str | None
) -> User:
    """Create an active viewer account; EMAIL_TAKEN when the email is in use."""
    if await db.scalar(select(func.count()).select_from(User).where(User.email == email)):
        await audit_alone(db, ctx.by(None, email), Action.REGISTER, email, "failure", "email_taken")
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
        await audit_alone(db, ctx.by(None, email), Action.REGISTER, email, "failure", "email_taken")
        raise EmailTaken() from None
    return user


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
        await audit_alone(
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
        await audit_alone(
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
