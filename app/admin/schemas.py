"""Admin API bodies for users and roles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.auth.schemas import UserRead

PermissionName = Annotated[
    str, StringConstraints(pattern=r"^(\*|[a-z0-9_]+:(\*|[a-z0-9_]+))$", max_length=128)
]
RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]{1,63}$")]
# Free text for people: lines and tabs, never NUL (PostgreSQL text cannot hold it) nor other
# control characters; as long as its column.
Description = Annotated[
    str, StringConstraints(max_length=255, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserUpdate(Strict):
    roles: list[RoleName] | None = Field(None, max_length=50)
    is_active: bool | None = None


class UserPage(BaseModel):
    items: list[UserRead]
    total: int
    page: int
    page_size: int


class RoleRead(BaseModel):
    name: str
    description: str | None
    permissions: list[str]
    created_at: datetime


class RoleCreate(Strict):
    name: RoleName
    description: Description | None = None
    permissions: list[PermissionName] = Field(default_factory=list, max_length=200)


class RoleUpdate(Strict):
    permissions: list[PermissionName] = Field(max_length=200)
    description: Description | None = None
