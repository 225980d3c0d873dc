"""Basic Auth credentials from AWS SSM Parameter Store: cached, single-flight, off the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from app.core.logging import get_logger
from app.credentials.base import BasicCredentials
from app.credentials.errors import CredentialsUnavailable

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

USER_PARAMETER = "service-user"
PASSWORD_PARAMETER = "service-password"
# While SSM fails, a provider that has a pair keeps serving it and asks SSM again this often.
STALE_RETRY_SECONDS = 10.0

log = get_logger("studio.credentials.ssm")


class SSMCredentialProvider:
    """`<prefix>/service-user` and `<prefix>/service-password`, cached for `ttl` seconds.

    Concurrent `get()`s on an empty or expired cache, and concurrent `refresh()`es, share one
    SSM call. The call runs in a worker thread because boto3 blocks.
    """

    def __init__(
        self,
        ssm_prefix: str,
        client_factory: Callable[[], SSMClient],
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ssm_prefix = ssm_prefix.rstrip("/")
        self.names = (
            f"{self.ssm_prefix}/{USER_PARAMETER}",
            f"{self.ssm_prefix}/{PASSWORD_PARAMETER}",
        )
        self.reads = 0  # SSM calls started, for metrics and tests
        self._client_factory = client_factory
        self._ttl = ttl
        self._clock = clock
        self._cached: BasicCredentials | None = None
        self._expires_at = float("-inf")
        self._inflight: asyncio.Task[BasicCredentials] | None = None

    async def get(self) -> BasicCredentials:
        """The cached pair while fresh, else a new read; `CredentialsUnavailable` if none."""
        if self._cached is not None and self._clock() < self._expires_at:
            return self._cached
        try:
            return await self._load()
        except CredentialsUnavailable:
            if self._cached is None:
                raise
            # SSM is failing but the last pair may still work: better than failing every request.
            self._expires_at = self._clock() + min(self._ttl, STALE_RETRY_SECONDS)
            log.warning(
                "serving cached service credentials after a failed SSM read", prefix=self.ssm_prefix
            )
            return self._cached

    async def refresh(self) -> BasicCredentials:
        """A new read from SSM (after a downstream 401), shared with any read already running."""
        return await self._load()

    async def _load(self) -> BasicCredentials:
        task = self._inflight
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._fetch())
            self._inflight = task
            task.add_done_callback(self._finished)
        # Shielded: one caller giving up (client disconnect) must not cancel the others' read.
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[BasicCredentials]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited any more is not logged

    async def _fetch(self) -> BasicCredentials:
        self.reads += 1
        credentials = await asyncio.to_thread(self._read)
        self._cached = credentials
        self._expires_at = self._clock() + self._ttl
        return credentials

    def _read(self) -> BasicCredentials:
        # Runs in a worker thread. Messages and logs carry reasons, never values or AWS's text.
        try:
            response = self._client_factory().get_parameters(
                Names=list(self.names), WithDecryption=True
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            log.error("SSM read failed", prefix=self.ssm_prefix, reason=code)
            raise CredentialsUnavailable() from None
        except BotoCoreError as exc:
            log.error("SSM read failed", prefix=self.ssm_prefix, reason=type(exc).__name__)
            raise CredentialsUnavailable() from None
        except Exception as exc:  # anything else must still read as 503, not 500
            log.error("SSM read failed", prefix=self.ssm_prefix, reason=type(exc).__name__)
            raise CredentialsUnavailable() from None

        found = {p["Name"]: p for p in response.get("Parameters", []) if "Name" in p}
        missing = [name for name in self.names if not found.get(name, {}).get("Value")]
        if missing:
            log.error(
                "SSM parameters missing",
                prefix=self.ssm_prefix,
                reason="missing",
                parameters=missing,
            )
            raise CredentialsUnavailable()
        plain = [name for name in self.names if found[name].get("Type") != "SecureString"]
        if plain:
            log.warning(
                "SSM parameters are not SecureString", prefix=self.ssm_prefix, parameters=plain
            )
        user, password = (found[name]["Value"] for name in self.names)
        return BasicCredentials(user, password)
