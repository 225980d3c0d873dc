"""This process's open sockets, by session, and the checks that end them.

The session cache's invalidation channel carries every change to a session (logout, a revoked
session, a password change, a disabled user, a role change); each instance is told each key
and re-reads that session: gone -> close 4401, the socket's permission gone -> close 4403.
FLUSH (and a renewed subscription, when messages may have been missed) re-checks every socket.
A periodic pass re-checks all of them too (a session that simply expired publishes nothing) and
renews their per-user leases. An expired access token ends nothing: only the session does.
A re-check that cannot reach Redis keeps the socket; the next pass decides.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import orjson

from app.auth.session_cache import FLUSH
from app.auth.sessions import SessionStore
from app.core.logging import get_logger
from app.identity.permissions import grants
from app.websocket.pump import Ending
from app.websocket.quota import SocketQuota

log = get_logger("studio.websocket")

SESSION_ENDED = 4401
PERMISSION_LOST = 4403
GOING_AWAY = 1001
_FLUSH = FLUSH.decode()


@dataclass(eq=False, slots=True)
class OpenSocket:
    """One relayed socket: whose it is and what it needs, and how to end it."""

    socket_id: str
    service: str
    user_id: str
    session_id: str
    session_key: str
    permission: str
    stopped: asyncio.Future[Ending] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def stop(self, code: int, reason: str) -> None:
        """End the socket with `code` (a second call changes nothing)."""
        if not self.stopped.done():
            self.stopped.set_result(Ending(code, reason, "studio"))


class SocketHub:
    """Open sockets of this process, re-checked against their sessions."""

    def __init__(
        self, store: SessionStore, quota: SocketQuota, check_interval: float = 20.0
    ) -> None:
        self.store = store
        self.quota = quota
        self.check_interval = check_interval
        self._by_session: dict[str, set[OpenSocket]] = {}
        self._checks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_session.values())

    def sockets(self) -> list[OpenSocket]:
        return [s for group in self._by_session.values() for s in group]

    def add(self, socket: OpenSocket) -> None:
        self._by_session.setdefault(socket.session_key, set()).add(socket)
        self._empty.clear()

    def remove(self, socket: OpenSocket) -> None:
        group = self._by_session.get(socket.session_key)
        if group is not None:
            group.discard(socket)
            if not group:
                del self._by_session[socket.session_key]
                if not self._by_session:
                    self._empty.set()

    def invalidated(self, key: str) -> None:
        """A session changed (FLUSH: any may have): re-check its sockets, off the caller."""
        targets = self.sockets() if key == _FLUSH else list(self._by_session.get(key, ()))
        if not targets:
            return
        task = asyncio.get_running_loop().create_task(self.recheck(targets))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def recheck(self, sockets: list[OpenSocket]) -> None:
        """Close each socket whose session ended (4401) or lost the permission (4403)."""
        for socket in sockets:
            try:
                fields = await self.store.principal_fields(socket.user_id, socket.session_id)
            except Exception as exc:  # Redis down: keep the socket, the next pass decides
                log.warning("socket session check failed", error=type(exc).__name__)
                continue
            if fields.user_id is None or fields.user_id.decode() != socket.user_id:
                socket.stop(SESSION_ENDED, "session ended")
                continue
            held = _permissions(fields.permissions)
            if not grants(held, socket.permission):
                socket.stop(PERMISSION_LOST, "permission revoked")

    # The periodic pass: started and stopped by the lifespan.

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._every(), name="websockets")

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            sockets = self.sockets()
            for socket in sockets:
                await self.quota.renew(socket.user_id, socket.socket_id)
            await self.recheck(sockets)

    def going_away(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """Refuse new sockets and end every open one (shutdown)."""
        self.closing = True
        for socket in self.sockets():
            socket.stop(code, reason)

    async def close_all(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """End every socket (shutdown) and wait, briefly, for them to close."""
        self.going_away(code, reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), 5)

    async def stop(self) -> None:
        await self.close_all()
        tasks = [t for t in (self._task, *self._checks) if t is not None]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None


def _permissions(raw: bytes | None) -> frozenset[str]:
    try:
        value = orjson.loads(raw or b"[]")
    except orjson.JSONDecodeError:
        return frozenset()
    return frozenset(p for p in value if isinstance(p, str))
