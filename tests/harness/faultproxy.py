"""A small asyncio TCP proxy that injects faults between Studio and a downstream.

Modes (switch at any time with `proxy.mode = ...`; new connections use the new mode):
  pass       bytes flow both ways untouched
  latency    every chunk waits `delay` seconds before it is forwarded
  reset      the client connection is aborted (RST) once `reset_after` response bytes passed
  blackhole  the connection is accepted, the request read and dropped; nothing ever answers
  slow       response bytes trickle out `slow_chunk` bytes every `delay` seconds
  refuse     the connection is accepted and closed at once (no HTTP answer)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Literal

Mode = Literal["pass", "latency", "reset", "blackhole", "slow", "refuse"]


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode: Mode = "pass"
        self.delay = 0.5
        self.reset_after = 64
        self.slow_chunk = 1
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        mode = self.mode
        try:
            if mode == "refuse":
                _abort(writer)
                return
            if mode == "blackhole":
                while await reader.read(65536):
                    pass
                return
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            try:
                await asyncio.gather(
                    self._pipe(reader, up_writer, mode, upstream=True),
                    self._pipe(up_reader, writer, mode, upstream=False),
                )
            finally:
                _abort(up_writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            if mode in ("reset",):
                _abort(writer)
            else:
                writer.close()

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, mode: Mode, upstream: bool
    ) -> None:
        passed = 0
        while True:
            data = await src.read(65536)
            if not data:
                with contextlib.suppress(OSError):
                    dst.write_eof()
                return
            if mode == "latency":
                await asyncio.sleep(self.delay)
            if mode == "reset" and not upstream:
                room = self.reset_after - passed
                if len(data) >= room:
                    dst.write(data[:room])
                    await dst.drain()
                    _abort(dst)
                    raise ConnectionResetError("fault proxy reset")
            if mode == "slow" and not upstream:
                for i in range(0, len(data), self.slow_chunk):
                    dst.write(data[i : i + self.slow_chunk])
                    await dst.drain()
                    await asyncio.sleep(self.delay)
            else:
                dst.write(data)
                await dst.drain()
            passed += len(data)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
