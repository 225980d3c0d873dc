"""Frames both ways, one at a time and never buffered beyond the one in hand; how a socket ends.

Three tasks race: client to service, service to client, and the watch (idle timeout, or Studio
ending the socket: session gone 4401, permission gone 4403, shutdown 1001). The first to finish
decides the ending, and the side that did not close gets the same code and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import aiohttp
from starlette.types import Message, Receive, Send

from app.websocket import metrics

TOO_BIG = 1009
INTERNAL = 1011
# Codes a close frame may not carry (RFC 6455 §7.4.1): what is sent on in their place.
_UNSENDABLE = {1004: 1000, 1005: 1000, 1006: 1001, 1015: 1011}
MAX_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 for the code


@dataclass(slots=True)
class Ending:
    """How a socket ended: the code and reason both sides get, and who ended it."""

    code: int
    reason: str
    by: str  # "client", "service" or "studio"


@dataclass(eq=False, slots=True)
class Activity:
    """Messages relayed, and when the last one was (for the idle timeout)."""

    last: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    upstream: int = 0
    downstream: int = 0

    def seen(self) -> None:
        self.last = asyncio.get_running_loop().time()


def sendable(code: int) -> int:
    """`code` as a close frame may carry it."""
    if code in _UNSENDABLE:
        return _UNSENDABLE[code]
    if 1000 <= code <= 1014 or 3000 <= code <= 4999:
        return code
    return 1000


def short_reason(reason: str) -> str:
    """A close reason that fits in a close frame."""
    data = reason.encode("utf-8")[:MAX_REASON_BYTES]
    return data.decode("utf-8", "ignore")


def _size(message: Message) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text: str = message.get("text") or ""
    return len(text) if len(text) * 4 <= 1 << 16 else len(text.encode("utf-8"))


async def client_to_service(
    receive: Receive,
    downstream: aiohttp.ClientWebSocketResponse,
    limit: int,
    activity: Activity,
    service: str,
) -> Ending:
    counter = metrics.MESSAGES.labels(service, "upstream")
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            return Ending(int(message.get("code", 1005)), message.get("reason") or "", "client")
        if kind != "websocket.receive":
            continue
        if _size(message) > limit:
            return Ending(TOO_BIG, "message too big", "studio")
        data = message.get("bytes")
        if data is not None:
            await downstream.send_bytes(data)
        else:
            await downstream.send_str(message.get("text") or "")
        activity.upstream += 1
        activity.seen()
        counter.inc()


async def service_to_client(
    downstream: aiohttp.ClientWebSocketResponse, send: Send, activity: Activity, service: str
) -> Ending:
    counter = metrics.MESSAGES.labels(service, "downstream")
    while True:
        msg = await downstream.receive()
        if msg.type is aiohttp.WSMsgType.TEXT:
            await send({"type": "websocket.send", "text": msg.data})
        elif msg.type is aiohttp.WSMsgType.BINARY:
            await send({"type": "websocket.send", "bytes": msg.data})
        elif msg.type is aiohttp.WSMsgType.ERROR:
            code = getattr(msg.data, "code", INTERNAL)
            return Ending(TOO_BIG if code == TOO_BIG else INTERNAL, "service error", "service")
        elif msg.type is aiohttp.WSMsgType.CLOSE:
            return Ending(downstream.close_code or 1005, msg.extra or "", "service")
        else:  # CLOSING, CLOSED: the connection went without a close frame
            return Ending(INTERNAL, "service connection lost", "service")
        activity.downstream += 1
        activity.seen()
        counter.inc()


async def watch(stopped: asyncio.Future[Ending], activity: Activity, idle: float) -> Ending:
    """Studio's own ending: the one asked for, or the idle timeout."""
    loop = asyncio.get_running_loop()
    while True:
        remaining = activity.last + idle - loop.time()
        if remaining <= 0:
            return Ending(1001, "idle timeout", "studio")
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(stopped), remaining)


async def run(
    receive: Receive,
    send: Send,
    downstream: aiohttp.ClientWebSocketResponse,
    stopped: asyncio.Future[Ending],
    activity: Activity,
    *,
    limit: int,
    idle: float,
    service: str,
) -> Ending:
    """Relay until one side closes or Studio ends the socket; close the other side."""
    tasks = {
        asyncio.create_task(client_to_service(receive, downstream, limit, activity, service)),
        asyncio.create_task(service_to_client(downstream, send, activity, service)),
        asyncio.create_task(watch(stopped, activity, idle)),
    }
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ending = _first(done)
    code, reason = sendable(ending.code), short_reason(ending.reason)
    if ending.by != "client":
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code, "reason": reason})
    if ending.by != "service" and not downstream.closed:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(downstream.close(code=code, message=reason.encode()), 5)
    return ending


def _first(done: set[asyncio.Task[Ending]]) -> Ending:
    for task in done:
        if not task.cancelled() and task.exception() is None:
            return task.result()
    return Ending(INTERNAL, "relay failed", "studio")
