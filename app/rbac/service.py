"""Roles and grants in PostgreSQL; sessions get the resulting permission snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, ValidationFailed
from app.rbac.models import Permission, Role

DEFAULT_ROLE = "viewer"


def permissions_of(roles: Iterable[Role]) -> list[str]:
    """The union of the roles' permissions, sorted."""
    return sorted({p.name for role in roles for p in role.permissions})


async def roles_named(session: AsyncSession, names: Sequence[str]) -> list[Role]:
    """The roles with these names; NOT_FOUND naming any that does not exist."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    found = list((await session.execute(select(Role).where(Role.name.in_(wanted)))).scalars())
    missing = sorted(set(wanted) - {r.name for r in found})
    if missing:
        raise ValidationFailed(
            "Unknown role", details=[{"loc": ["body", "roles"], "msg": f"unknown roles: {missing}"}]
        )
    return sorted(found, key=lambda r: r.name)


async def list_roles(session: AsyncSession) -> list[Role]:
    return list((await session.execute(select(Role).order_by(Role.name))).scalars())


async def get_role(session: AsyncSession, name: str) -> Role:
    role = (await session.execute(select(Role).where(Role.name == name))).scalar_one_or_none()
    if role is None:
        raise NotFound("Role not found")
    return role


async def permissions_named(session: AsyncSession, names: Sequence[str]) -> list[Permission]:
    """Permission rows for these names, created when new."""
    wanted = sorted(set(names))
    existing = {
        p.name: p
        for p in (
            await session.execute(select(Permission).where(Permission.name.in_(wanted)))
        ).scalars()
    }
    for name in wanted:
        if name not in existing:
            existing[name] = Permission(name=name)
            session.add(existing[name])
    return [existing[n] for n in wanted]
