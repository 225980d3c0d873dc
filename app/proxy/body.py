"""The request side of a proxied call: the client's body as it streams, and the client watch.

A client's body may pause at most the service's `write` timeout between two chunks (then 408,
or a closed connection once the answer started). Once the body is read, `ClientWatch` owns
`receive` and cancels the call when the client leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from starlette.types import Receive

from app.core.errors import PayloadTooLarge, RequestTimeout

WATCH_AFTER = 0.05  # seconds an answer may take before the client's connection is watched


class ClientGone(Exception):
    """The client disconnected while its request body was being read."""


class RequestBody:
    """The client's body as an async iterable: counted, capped and timed while it streams."""

    __slots__ = ("_idle", "_on_end", "_receive", "limit", "received", "started")

    def __init__(
        self,
        receive: Receive,
        limit: int,
        idle: float,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self._receive = receive
        self._idle = idle
        self._on_end = on_end
        self.limit = limit
        self.received = 0
        self.started = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        receive = self._receive
        idle = self._idle
        while True:
            # Only the wait for the client is timed, never the time the downstream takes to
            # accept a chunk: a slow downstream is not the client's stall.
            try:
                async with asyncio.timeout(idle):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(details={"write_timeout": idle}) from None
            if message["type"] != "http.request":
                raise ClientGone()
            chunk: bytes = message.get("body", b"")
            if chunk:
                self.received += len(chunk)
                if self.received > self.limit:
                    raise PayloadTooLarge(details={"max_body_bytes": self.limit})
                yield chunk
            if not message.get("more_body", False):
                if self._on_end is not None:
                    self._on_end()
                return

    async def read(self) -> bytes:
        """The whole body (only for bodies known to be small)."""
        return b"".join([chunk async for chunk in self])


class ClientWatch:
    """Once the request body is read, own `receive`: cancel the forwarding task if the client
    leaves, so an abandoned request frees its downstream connection at once instead of after
    the read timeout. (ASGI servers swallow sends to a closed connection: only `receive` tells.)

    The watching task starts `WATCH_AFTER` seconds after `start()`: most answers are complete
    by then and never pay for a task; a slow one (a model call, a stream) is watched from then on.
    """

    __slots__ = ("_receive", "_target", "_task", "_timer", "gone")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._target = asyncio.current_task()  # the forwarding task, whoever calls start()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.gone = False

    def start(self) -> None:
        """Begin watching soon (idempotent); only once nothing else reads `receive`."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._begin)

    def stop(self) -> None:
        """Stop watching; call right after the last body message, before any other await."""
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()

    def _begin(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except Exception:  # a server that cannot tell us: never cancel then
            return
        self.gone = True
        if self._target is not None:
            self._target.cancel()
