"""Admin operations on users and roles; live sessions follow every change at once."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.schemas import RoleCreate, RoleRead, RoleUpdate, UserUpdate
from app.audit import service as audit
from app.audit.service import Action, AuditContext
from app.auth import accounts
from app.auth.models import User
from app.auth.service import AuthContext, get_user
from app.auth.session_data import Grants
from app.core.errors import Conflict, Forbidden, NotFound
from app.identity.permissions import uncovered
from app.identity.principal import Principal
from app.rbac import service as rbac
from app.rbac.models import Role, user_role


def role_read(role: Role) -> RoleRead:
    return RoleRead(
        name=role.name,
        description=role.description,
        permissions=[p.name for p in role.permissions],
        created_at=role.created_at,
    )


async def list_users(
    db: AsyncSession,
    *,
    page: int,
    page_size: int,
    email: str | None,
    role: str | None,
    is_active: bool | None,
) -> tuple[list[User], int]:
    """A page of users, newest first, filtered by email substring, role and status."""
    query = select(User)
    if email:
        escaped = (
            email.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        )
        query = query.where(User.email.like(f"%{escaped}%", escape="\\"))
    if role:
        query = query.where(User.roles.any(Role.name == role))
    if is_active is not None:
        query = query.where(User.is_active.is_(is_active))
    total = int(await db.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = await db.execute(
        query.order_by(User.created_at.desc(), User.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows.scalars()), total


async def _refuse(
    db: AsyncSession,
    ctx: AuditContext,
    admin: Principal,
    action: str,
    target: str,
    missing: list[str],
    reason: str,
) -> Forbidden:
    """Audit a least-privilege refusal (nothing else is kept) and build its FORBIDDEN."""
    await db.rollback()
    details = {"uncovered": missing, "reason": reason}
    await audit.record(
        db,
        ctx.by(admin.user_id, admin.email),
        action,
        target=target,
        outcome="denied",
        details=details,
    )
    await db.commit()
    return Forbidden("You can grant only permissions you hold yourself", details=details)


async def update_user(
    db: AsyncSession,
    auth: AuthContext,
    ctx: AuditContext,
    admin: Principal,
    user_id: str,
    change: UserUpdate,
) -> User:
    """Set roles and/or status; disabling revokes sessions, new roles reach them at once."""
    user = await get_user(db, user_id)
    if user is None:
        raise NotFound("User not found")
    if str(user.id) == admin.user_id:
        raise Forbidden("You cannot change your own roles or status")
    # Least privilege: only a user whose permissions the caller covers may be changed (a weaker
    # admin cannot disable or demote a stronger one), and only covered roles may be added.
    missing = uncovered(admin.permissions, rbac.permissions_of(user.roles))
    reason = "target_exceeds_caller"
    if not missing and change.roles is not None:
        held = {r.name for r in user.roles}
        added = [r for r in await rbac.roles_named(db, change.roles) if r.name not in held]
        missing, reason = uncovered(admin.permissions, rbac.permissions_of(added)), "role_added"
    if missing:
        raise await _refuse(db, ctx, admin, Action.USER_UPDATE, str(user.id), missing, reason)
    before: dict[str, Any] = {
        "roles": sorted(r.name for r in user.roles),
        "is_active": user.is_active,
    }
    if change.roles is not None:
        user.roles = await rbac.roles_named(db, change.roles)
    if change.is_active is not None:
        user.is_active = change.is_active
    new_roles = sorted(r.name for r in user.roles)
    after: dict[str, Any] = {"roles": new_roles, "is_active": user.is_active}
    # In the same transaction: a login of this user in flight either sees the new version or
    # holds the row until its session exists, which the update below then reaches.
    version = (await accounts.bump_grants(db, [user.id]))[user.id]
    await audit.record(
        db,
        ctx.by(admin.user_id, admin.email),
        Action.USER_UPDATE,
        target=str(user.id),
        details={"before": before, "after": after},
    )
    await db.commit()
    # Committed: what follows in Redis is retried, never reported as a failure of the change.
    if not user.is_active:
        await auth.end_sessions(str(user.id))
    elif before["roles"] != new_roles:
        grants = Grants(new_roles, rbac.permissions_of(user.roles), version)
        await auth.push_grants(str(user.id), grants)
    return user


async def create_role(
    db: AsyncSession, ctx: AuditContext, admin: Principal, body: RoleCreate
) -> Role:
    """A new role; every permission in it must be covered by the caller's own."""
    missing = uncovered(admin.permissions, body.permissions)
    if missing:
        raise await _refuse(db, ctx, admin, Action.ROLE_CREATE, body.name, missing, "not_covered")
    role = Role(
        name=body.name,
        description=body.description,
        permissions=await rbac.permissions_named(db, body.permissions),
    )
    db.add(role)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict("Role already exists") from None
    await audit.record(
        db,
        ctx.by(admin.user_id, admin.email),
        Action.ROLE_CREATE,
        target=body.name,
        details={"permissions": sorted(set(body.permissions))},
    )
    await db.commit()
    return role


async def update_role(
    db: AsyncSession,
    auth: AuthContext,
    ctx: AuditContext,
    admin: Principal,
    name: str,
    body: RoleUpdate,
) -> Role:
    """Replace a role's permissions; every live session of its holders is updated."""
    role = await rbac.get_role(db, name)
    before = [p.name for p in role.permissions]
    missing = uncovered(admin.permissions, body.permissions)
    reason = "not_covered"
    if not missing and name in admin.roles:
        # Its own role: narrowed or kept, never widened (whatever else the caller holds).
        missing, reason = sorted(set(body.permissions) - set(before)), "own_role_widened"
    if missing:
        raise await _refuse(db, ctx, admin, Action.ROLE_UPDATE, name, missing, reason)
    role.permissions = await rbac.permissions_named(db, body.permissions)
    if body.description is not None:
        role.description = body.description
    await audit.record(
        db,
        ctx.by(admin.user_id, admin.email),
        Action.ROLE_UPDATE,
        target=name,
        details={"before": before, "after": sorted(set(body.permissions))},
    )
    holders = [
        uuid.UUID(str(h))
        for h in (
            await db.execute(select(user_role.c.user_id).where(user_role.c.role_id == role.id))
        ).scalars()
    ]
    versions = await accounts.bump_grants(db, holders)
    await db.commit()
    for holder, version in versions.items():
        user = await db.get(User, holder, populate_existing=True)
        if user is not None and user.is_active:
            grants = Grants(
                sorted(r.name for r in user.roles), rbac.permissions_of(user.roles), version
            )
            await auth.push_grants(str(user.id), grants)
    return role
