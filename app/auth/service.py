"""What the account flows share: their view of the running app, the user as read, and audit
writes that must not undo a change made in Redis."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.service import AuditContext
from app.auth.errors import AccountDisabled, SessionRevoked
from app.auth.models import User
from app.auth.reconcile import Reconciler
from app.auth.schemas import UserRead
from app.auth.session_data import Grants
from app.auth.sessions import SessionStore
from app.auth.tokens import TokenService
from app.core.logging import get_logger
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


async def active_user(db: AsyncSession, auth: AuthContext, principal: Principal) -> User:
    """The caller's account, which must still be active (else its sessions end, as a refresh
    would find: see `renewal.current_grants`)."""
    user = await get_user(db, principal.user_id)
    if user is None:
        raise SessionRevoked()
    if not user.is_active:
        await auth.end_sessions(principal.user_id)
        raise AccountDisabled()
    return user


async def audit_alone(
    db: AsyncSession, ctx: AuditContext, action: str, target: str | None, outcome: str, reason: str
) -> None:
    """Record a refused attempt in a transaction of its own (nothing else changed)."""
    await audit.record(db, ctx, action, target=target, outcome=outcome, details={"reason": reason})
    await db.commit()


async def audit_best_effort(
    db: AsyncSession, ctx: AuditContext, action: str, target: str, outcome: str
) -> None:
    """Record a change made in Redis; an unreachable database only sends it to the error log."""
    # The change itself lives in Redis: an unreachable database must not undo a rotation, so
    # the event then goes to the error log in full instead.
    try:
        await audit.record(db, ctx, action, target=target, outcome=outcome)
        await db.commit()
    except (SQLAlchemyError, OSError):
        await safe_rollback(db)
        log.error(
            "audit write failed",
            action=action,
            target=target,
            outcome=outcome,
            actor_id=str(ctx.actor_id),
            client_ip=ctx.client_ip,
        )


async def safe_rollback(db: AsyncSession) -> None:
    """Roll back, whatever state the connection is in."""
    with contextlib.suppress(SQLAlchemyError, OSError):
        await db.rollback()
