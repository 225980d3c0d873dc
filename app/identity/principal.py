"""The authenticated caller, as every domain sees it."""

from __future__ import annotations

from dataclasses import dataclass

from app.identity.permissions import grants


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: built from the Redis session, never from token claims beyond ids."""

    user_id: str
    email: str
    session_id: str
    roles: tuple[str, ...]
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return grants(self.permissions, permission)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles or "*" in self.permissions
