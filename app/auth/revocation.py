"""Ending sessions: log out, revoke one of one's sessions, or change the password, which ends
all the others."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.service import Action, AuditContext
from app.auth import accounts, passwords
from app.auth.errors import InvalidCredentials, SessionRevoked
from app.auth.service import AuthContext, audit_alone, audit_best_effort, get_user
from app.identity.principal import Principal


async def logout(
    db: AsyncSession, auth: AuthContext, ctx: AuditContext, principal: Principal
) -> None:
    """End the caller's session at once."""
    await auth.sessions.revoke(principal.user_id, principal.session_id)
    await audit_best_effort(
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
        await audit_best_effort(
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
        await audit_alone(
            db, actor, Action.PASSWORD_CHANGE, str(user.id), "failure", "bad_password"
        )
        raise InvalidCredentials("Current password is incorrect")
    user.password_hash = await passwords.hash_password(new)
    await accounts.bump_grants(db, [user.id])
    await audit.record(db, actor, Action.PASSWORD_CHANGE, target=str(user.id))
    await db.commit()
    revoked = await auth.end_sessions(principal.user_id, except_sid=principal.session_id)
    return revoked or 0
