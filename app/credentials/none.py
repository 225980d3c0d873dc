"""The provider of a service that takes no credentials (`auth: {type: none}`)."""

from __future__ import annotations


class NoCredentialProvider:
    """Always None: Studio sends no `Authorization` header to the service."""

    async def get(self) -> None:
        """No credentials."""
        return None

    async def refresh(self) -> None:
        """No credentials."""
        return None
