"""Seed the roles admin, analyst and viewer with their permissions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 04:20:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here on purpose: a migration must not change when app code does.
ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("Everything, including users, roles and the audit log", ["*"]),
    "analyst": (
        "Uses every capability backend",
        ["nexus:*", "zen:*", "agents:*", "ingestion:*", "dashboard:read"],
    ),
    "viewer": (
        "Reads documents and chats; the default for a new account",
        ["nexus:read", "zen:chat", "agents:read", "ingestion:read", "dashboard:read"],
    ),
}

role = sa.table(
    "role",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("description", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
permission = sa.table("permission", sa.column("id", sa.Integer), sa.column("name", sa.String))
role_permission = sa.table(
    "role_permission", sa.column("role_id", sa.Integer), sa.column("permission_id", sa.Integer)
)


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    names = sorted({p for _, perms in ROLES.values() for p in perms})
    existing = set(bind.execute(sa.select(permission.c.name)).scalars())
    missing = [{"name": n} for n in names if n not in existing]
    if missing:
        op.bulk_insert(permission, missing)
    perm_ids = {n: i for n, i in bind.execute(sa.select(permission.c.name, permission.c.id))}
    for name, (description, perms) in ROLES.items():
        if bind.execute(sa.select(role.c.id).where(role.c.name == name)).first() is None:
            bind.execute(
                role.insert().values(name=name, description=description, created_at=now)
            )
        role_id = bind.execute(sa.select(role.c.id).where(role.c.name == name)).scalar_one()
        granted = set(
            bind.execute(
                sa.select(role_permission.c.permission_id).where(
                    role_permission.c.role_id == role_id
                )
            ).scalars()
        )
        rows = [
            {"role_id": role_id, "permission_id": perm_ids[p]}
            for p in perms
            if perm_ids[p] not in granted
        ]
        if rows:
            op.bulk_insert(role_permission, rows)


def downgrade() -> None:
    bind = op.get_bind()
    ids = list(
        bind.execute(sa.select(role.c.id).where(role.c.name.in_(list(ROLES)))).scalars()
    )
    if ids:
        bind.execute(role_permission.delete().where(role_permission.c.role_id.in_(ids)))
        bind.execute(role.delete().where(role.c.id.in_(ids)))
