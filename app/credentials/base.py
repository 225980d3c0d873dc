"""What the proxy needs from a credential source: Basic Auth for a service, and a refresh."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"BasicCredentials(username={self.username!r}, password='***')"

    @property
    def header(self) -> str:
        """The `Authorization` header value."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


class CredentialProvider(Protocol):
    """One per service. `get` may serve from a cache; `refresh` forces a new read (after a 401)."""

    async def get(self) -> BasicCredentials | None: ...

    async def refresh(self) -> BasicCredentials | None: ...
