"""`{prefix}/admin`: users and roles (CONTRACT.md §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from app.admin import service as admin
from app.admin.schemas import RoleCreate, RoleRead, RoleUpdate, UserPage, UserUpdate
from app.audit.dependencies import Audit
from app.auth.dependencies import Auth
from app.auth.schemas import UserRead
from app.auth.service import user_read
from app.core import envelope
from app.core.db import DbSession
from app.core.envelope import Envelope
from app.core.errors import Conflict, Forbidden, NotFound
from app.core.params import NO_NUL
from app.core.raises import raises
from app.identity.dependencies import require
from app.identity.principal import Principal
from app.rbac import service as rbac

router = APIRouter(prefix="/admin", tags=["admin"])
UsersAdmin = Annotated[Principal, Depends(require("admin:users"))]
RolesAdmin = Annotated[Principal, Depends(require("admin:roles"))]


@router.get("/users", response_model=Envelope[UserPage], operation_id="admin.users.list")
async def list_users(
    _: UsersAdmin,
    db: DbSession,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    email: Annotated[str | None, Query(max_length=320, pattern=NO_NUL)] = None,
    role: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    is_active: bool | None = None,
) -> dict[str, Any]:
    """Users, paginated, filterable by email substring, role and status."""
    users, total = await admin.list_users(
        db, page=page, page_size=page_size, email=email, role=role, is_active=is_active
    )
    return envelope.ok(
        UserPage(items=[user_read(u) for u in users], total=total, page=page, page_size=page_size)
    )


@router.patch(
    "/users/{user_id}", response_model=Envelope[UserRead], operation_id="admin.users.update"
)
# NOT_FOUND: no such user; FORBIDDEN: oneself, or beyond the caller's own permissions.
@raises(NotFound, Forbidden)
async def update_user(
    user_id: str,
    body: UserUpdate,
    principal: UsersAdmin,
    db: DbSession,
    auth: Auth,
    audit: Audit,
) -> dict[str, Any]:
    """Change a user's roles and/or status; their sessions follow at once."""
    user = await admin.update_user(db, auth, audit, principal, user_id, body)
    return envelope.ok(user_read(user), "User updated")


@router.get("/roles", response_model=Envelope[list[RoleRead]], operation_id="admin.roles.list")
async def list_roles(_: RolesAdmin, db: DbSession) -> dict[str, Any]:
    """Every role with its permissions."""
    return envelope.ok([admin.role_read(r) for r in await rbac.list_roles(db)])


@router.post(
    "/roles",
    status_code=201,
    response_model=Envelope[RoleRead],
    operation_id="admin.roles.create",
)
@raises(Conflict, Forbidden)
async def create_role(
    body: RoleCreate, principal: RolesAdmin, db: DbSession, audit: Audit
) -> dict[str, Any]:
    """A new role."""
    role = await admin.create_role(db, audit, principal, body)
    return envelope.ok(admin.role_read(role), "Role created")


@router.put("/roles/{name}", response_model=Envelope[RoleRead], operation_id="admin.roles.update")
@raises(NotFound, Forbidden)
async def update_role(
    name: Annotated[str, Path(max_length=64, pattern=NO_NUL)],
    body: RoleUpdate,
    principal: RolesAdmin,
    db: DbSession,
    auth: Auth,
    audit: Audit,
) -> dict[str, Any]:
    """Replace a role's permissions."""
    role = await admin.update_role(db, auth, audit, principal, name, body)
    return envelope.ok(admin.role_read(role), "Role updated")
