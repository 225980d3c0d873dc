"""`require(permission)`: RBAC from the session snapshot, no database on the hot path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends

from app.auth.dependencies import current_principal
from app.auth.principal import Principal
from app.core.errors import Forbidden


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that passes the principal through when it holds `permission`."""

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.can(permission):
            raise Forbidden(f"Missing permission {permission}")
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_').replace('*', 'any')}"
    return dependency
