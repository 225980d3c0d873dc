"""Password hashing: argon2id via the passlib API, always off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from passlib.context import CryptContext

# OWASP's argon2id baseline (19 MiB, t=2, p=1); pbkdf2 hashes from older systems still verify
# and are replaced by argon2id on the next successful login.
CONTEXT = CryptContext(
    schemes=["argon2", "pbkdf2_sha256"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=19_456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)

HASH_NICENESS = 10


def _lower_priority() -> None:
    # Linux schedules threads individually: hashing yields the CPU to the event loop thread,
    # so a login storm costs logins latency rather than every other request's.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)


# A bounded pool of its own: a login storm queues here instead of starving other thread work
# (SSM calls, DNS) and leaves a core for the event loop.
_POOL = ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 2) - 1),
    thread_name_prefix="pw",
    initializer=_lower_priority,
)


async def _run(fn: partial[object]) -> object:
    return await asyncio.get_running_loop().run_in_executor(_POOL, fn)


async def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return str(await _run(partial(CONTEXT.hash, password)))


async def verify_password(password: str, stored_hash: str) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one uses outdated parameters or scheme)."""
    result: tuple[bool, str | None] = await _run(  # type: ignore[assignment]
        partial(CONTEXT.verify_and_update, password, stored_hash)
    )
    return bool(result[0]), result[1]


class DummyHash:
    """A real hash to verify against for unknown emails, so both paths take the same time."""

    _value: str | None = None

    @classmethod
    async def get(cls) -> str:
        if cls._value is None:
            cls._value = await hash_password(os.urandom(16).hex())
        return cls._value
