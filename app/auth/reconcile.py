"""Session changes that follow a database commit: retried at once, then in the background.

Disabling a user, changing a password or changing grants commits in PostgreSQL first; the
sessions in Redis follow. When Redis refuses that second step, the change is not undone and the
caller is not told it failed (it did not): the step is retried a few times at once, then in the
background until it succeeds or no session it concerns can still be alive
(SESSION_MAX_LIFETIME_SECONDS). Meanwhile refresh and `/auth/me` read the truth from the
database, so a disabled user gets no new token either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.errors import DependencyUnavailable
from app.core.logging import get_logger

log = get_logger("studio.sessions.reconcile")

INLINE_PAUSES = (0.02, 0.1)  # between the attempts made while the caller waits
FIRST_PAUSE, MAX_PAUSE = 0.1, 5.0  # background retries back off between these

Job = Callable[[], Awaitable[object]]


class Reconciler:
    """Runs session jobs to completion (see the module docstring); one per process."""

    def __init__(self, retry_for: float) -> None:
        self._retry_for = retry_for
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def run(self, what: str, job: Job, **fields: Any) -> bool:
        """Run `job`; True when it succeeded while the caller waited, False when it goes on
        in the background."""
        for pause in (*INLINE_PAUSES, None):
            try:
                await job()
                return True
            except DependencyUnavailable:
                if pause is None:
                    break
                await asyncio.sleep(pause)
        log.error("session change deferred: session store unavailable", what=what, **fields)
        task = asyncio.create_task(self._retry(what, job, fields), name=f"reconcile-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return False

    async def _retry(self, what: str, job: Job, fields: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._retry_for
        pause = FIRST_PAUSE
        while loop.time() < give_up:
            await asyncio.sleep(pause)
            try:
                await job()
            except DependencyUnavailable:
                pause = min(pause * 2, MAX_PAUSE)
                continue
            log.info("deferred session change done", what=what, **fields)
            return
        log.error("deferred session change abandoned", what=what, **fields)
