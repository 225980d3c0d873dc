"""The HTTP/1.1 protocol Studio is served with: uvicorn's httptools protocol, corked.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and its body apart; uvloop sends each write at once, so every small
answer costs two `send` system calls, two TCP segments and two wake-ups of the client. Here a
connection's writes made in one event-loop step leave together at the end of that step (the
idea of Node's `socket.cork()`): an enveloped answer, whose body follows its head in the same
step, is one write; a stream whose next chunk comes later (SSE) still has its head on the wire
one loop step after the app sent it. A complete answer also waits for the end of the step
rather than leaving at once: the writes of every request the step finished then go out
together, which measured 10-15 % more requests per second at c=64 (BENCHMARKS.md).

`RUNTIME_CORKED_WRITES=false` serves with uvicorn's own httptools protocol instead. It
subclasses a private class of uvicorn: pyproject.toml bounds uvicorn to the tested series.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# `studio serve` and the benchmarks pass one of these to uvicorn's `http` option.
HTTP_PROTOCOL = "app.runtime.protocol:CorkedHttpToolsProtocol"
STOCK_PROTOCOL = "httptools"

# Larger writes go out as they are: joining would copy them, and they fill segments anyway.
DIRECT_WRITE_BYTES = 64 * 1024


def http_protocol(corked: bool) -> str:
    """uvicorn's `http` option: the corked protocol, or uvicorn's own when corking is off."""
    return HTTP_PROTOCOL if corked else STOCK_PROTOCOL


class CorkedTransport(asyncio.Transport):
    """A transport whose small writes wait for the end of the current loop step."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        if len(data) >= DIRECT_WRITE_BYTES:
            self.flush()
            self._transport.write(data)
            return
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what this step wrote, in one write (a no-op when nothing waits)."""
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        # A connection lost since the app wrote: nothing can be delivered, and uvloop raises.
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `CorkedTransport`; everything else is uvicorn's."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport has the Transport methods without being a subclass.
        super().connection_made(CorkedTransport(cast(asyncio.Transport, transport), self.loop))
