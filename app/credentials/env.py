"""Basic Auth credentials from two environment variables, for local runs."""

from __future__ import annotations

import os
from collections.abc import Mapping

from app.core.logging import get_logger
from app.credentials.base import BasicCredentials
from app.credentials.errors import CredentialsUnavailable

log = get_logger("studio.credentials.env")


class EnvCredentialProvider:
    """Reads `username_env` and `password_env` on every call (cheap, and never stale)."""

    def __init__(
        self, username_env: str, password_env: str, environ: Mapping[str, str] | None = None
    ) -> None:
        self.username_env = username_env
        self.password_env = password_env
        self._environ = os.environ if environ is None else environ

    async def get(self) -> BasicCredentials:
        """The credentials, or `CredentialsUnavailable` when either variable is unset or empty."""
        username = self._environ.get(self.username_env)
        password = self._environ.get(self.password_env)
        missing = [
            name
            for name, value in ((self.username_env, username), (self.password_env, password))
            if not value
        ]
        if missing or username is None or password is None:
            log.warning("service credentials unavailable", reason="unset", variables=missing)
            raise CredentialsUnavailable()
        return BasicCredentials(username, password)

    async def refresh(self) -> BasicCredentials:
        """The same as `get`: the environment of a running process does not change."""
        return await self.get()
