"""Login's read and write of an account, in SQLAlchemy Core: no ORM objects on the hot path."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.auth.schemas import UserRead
from app.rbac.models import Permission, Role, role_permission, user_role


@dataclass(frozen=True, slots=True)
class Account:
    """What login needs of a user, read with its grants in one Core query (no ORM objects)."""

    id: uuid.UUID
    email: str
    password_hash: str
    full_name: str | None
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    grants_version: int
    roles: list[str]
    permissions: list[str]

    def read(self, last_login_at: datetime | None) -> UserRead:
        """The account as the API shows it, with its new last-login time."""
        return UserRead.model_validate(
            replace(self, last_login_at=last_login_at), from_attributes=True
        )


# The account's own columns: selected, then passed to Account by name.
_COLUMNS = (
    "id",
    "email",
    "password_hash",
    "full_name",
    "is_active",
    "created_at",
    "last_login_at",
    "grants_version",
)

_user_table = cast(Table, User.__table__)
_users = _user_table.c
_GRANTED = (
    select(
        *(_users[name] for name in _COLUMNS),
        Role.name.label("role"),
        Permission.name.label("permission"),
    )
    .select_from(User)
    .outerjoin(user_role, user_role.c.user_id == _users.id)
    .outerjoin(Role, Role.id == user_role.c.role_id)
    .outerjoin(role_permission, role_permission.c.role_id == Role.id)
    .outerjoin(Permission, Permission.id == role_permission.c.permission_id)
)
_ACCOUNT = _GRANTED.where(_users.email == bindparam("email"))
_ACCOUNT_BY_ID = _GRANTED.where(_users.id == bindparam("user_id"))
_LOGGED_IN = (
    update(_user_table)
    .where(_users.id == bindparam("user_id"), _users.is_active)
    .returning(_users.grants_version)
)
_BUMP = (
    update(_user_table)
    .where(_users.id.in_(bindparam("user_ids", expanding=True)))
    .values(grants_version=_users.grants_version + 1)
    .returning(_users.id, _users.grants_version)
)


async def find_account(db: AsyncSession, email: str) -> Account | None:
    """The account with this (stored-form) email, its role and permission names; one round
    trip, one row per (role, permission) grant."""
    return _account((await db.execute(_ACCOUNT, {"email": email})).all())


async def find_account_by_id(db: AsyncSession, user_id: uuid.UUID) -> Account | None:
    """The account with this id and its grants, as they are now (refresh, a re-read at login)."""
    return _account((await db.execute(_ACCOUNT_BY_ID, {"user_id": user_id})).all())


def _account(rows: Sequence[Any]) -> Account | None:
    if not rows:
        return None
    first = rows[0]._mapping
    return Account(
        **{name: first[name] for name in _COLUMNS},
        roles=sorted({r.role for r in rows if r.role is not None}),
        permissions=sorted({r.permission for r in rows if r.permission is not None}),
    )


async def record_login(
    db: AsyncSession, user_id: uuid.UUID, changes: dict[str, object]
) -> int | None:
    """Store `changes` (last login, an upgraded hash) in the caller's transaction; the account's
    grants version, or None when it is no longer active (disabled while its password was being
    checked). The row stays locked until the caller commits: a concurrent change of the user's
    grants waits for it, so it then finds (and updates) the session this login opens."""
    result = await db.execute(_LOGGED_IN.values(changes), {"user_id": user_id})
    version = result.scalar_one_or_none()
    return None if version is None else int(version)


async def bump_grants(db: AsyncSession, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Raise the grants version of these users in the caller's transaction (locking their rows);
    their new versions."""
    if not user_ids:
        return {}
    rows = await db.execute(_BUMP, {"user_ids": list(user_ids)})
    return {row.id: int(row.grants_version) for row in rows}
