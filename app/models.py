"""Every table, imported once so Alembic and the tests see the whole schema."""

from app.audit.models import AuditEvent
from app.auth.models import User
from app.core.db import Base
from app.rbac.models import Permission, Role, role_permission, user_role

metadata = Base.metadata

__all__ = ["AuditEvent", "Permission", "Role", "User", "metadata", "role_permission", "user_role"]
