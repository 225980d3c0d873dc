"""Fake downstream services: small raw-ASGI apps that behave like Nexus, Zen, Agents, Ingestion.

Every endpoint lives under the service's optional base path (Agents: `/orchestrator`):

- `GET /health`: `{"status": "ok", "service": name}`, no auth.
- any unlisted path: echo of the request (method, path, raw path, raw query, headers, body
  length and sha256, JSON body); the body is hashed while it streams, never held whole.
- `/upload`: the same as the echo, named for big uploads.
- `GET /sse?n=5&interval=0.1`: `n` server-sent events, `interval` seconds apart.
- `GET /files/{size}`: `size` deterministic bytes (`pattern(size)`), with Content-Disposition.
- `GET /slow?seconds=2`: answers after a pause; `/hang` never answers (until the client goes).
- `ANY /status/{code}`: that status with a JSON body (`?type=text` for text/plain).
- `GET /text`: a text/plain body. `GET /cookie`: sets a cookie.
- `GET /reset`: announces a body, sends part of it and drops the connection
  (`?type=json` for a JSON content type).
- `GET /enveloped`: a body already in Studio's envelope (`?status=409` for an error one).
- `GET /json?size=N`: a JSON body of about N bytes (`&chunked=1` without Content-Length).
- `GET /redirect`: 302 to the service's own absolute URL.
- `POST /__fake__/password` `{"password": ...}`: rotate the expected password (no auth).

With `username` set, everything but `/health` and `/__fake__/*` needs that Basic Auth (401
JSON with a Basic challenge otherwise). `requests` records every request received.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import Message, Receive, Scope, Send

JSON_LIMIT = 1024 * 1024  # bodies larger than this are hashed, not parsed
_BLOCK = bytes(range(256)) * 256  # 64 KiB


def pattern(size: int, offset: int = 0) -> bytes:
    """The deterministic bytes `/files/{size}` serves."""
    start = offset % 256
    reps = (start + size) // len(_BLOCK) + 1
    return (_BLOCK * reps)[start : start + size]


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class FakeService:
    """One fake downstream as an ASGI app."""

    name: str
    username: str | None = None
    password: str | None = None
    base_path: str = ""
    requests: list[Recorded] = field(default_factory=list)
    auth_failures: int = 0
    disconnects: int = 0  # SSE streams and /hang requests whose client left early
    # `/sse?gated=1`: each event after the first waits for this to be set, then it is cleared.
    sse_gate: asyncio.Event | None = None
    sse_sent: int = 0  # events sent by `/sse` since the last reset

    def set_password(self, password: str) -> None:
        """Rotate the expected password (as if changed in SSM and on the service)."""
        self.password = password

    def reset(self) -> None:
        """Forget recorded requests."""
        self.requests.clear()
        self.auth_failures = 0
        self.disconnects = 0
        self.sse_gate = None
        self.sse_sent = 0

    def calls(self, path_part: str = "") -> list[Recorded]:
        """Recorded requests whose path contains `path_part` (health checks excluded)."""
        return [r for r in self.requests if path_part in r.path and not r.path.endswith("/health")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        local = path[len(self.base_path) :] if path.startswith(self.base_path) else path
        if local.startswith("/__fake__/"):
            await self._control(local, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(
            Recorded(scope["method"], path, scope["query_string"].decode("latin-1"), headers)
        )
        if local == "/health":
            await send_json(send, 200, {"status": "ok", "service": self.name})
            return
        if self.username is not None and not self._authorised(headers.get("authorization")):
            self.auth_failures += 1
            await send_json(
                send,
                401,
                {"detail": "invalid service credentials"},
                [(b"www-authenticate", b'Basic realm="fake"')],
            )
            return
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        handler = self._route(local)
        await handler(scope, receive, send, local, query)

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.username and password == self.password

    async def _control(self, local: str, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        if local == "/__fake__/password":
            self.set_password(orjson.loads(body)["password"])
            await send_json(send, 200, {"rotated": True})
        else:
            await send_json(send, 404, {"detail": "unknown control"})

    def _route(self, local: str) -> Any:
        if local in ("/upload",) or not local.startswith(_ROUTED):
            return self._echo
        first = local.split("/", 2)[1]
        return getattr(self, f"_{first}", self._echo)

    async def _echo(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        digest = hashlib.sha256()
        length = 0
        kept: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            digest.update(chunk)
            length += len(chunk)
            if length <= JSON_LIMIT:
                kept.append(chunk)
            if not message.get("more_body", False):
                break
        headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        parsed: Any = None
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if length <= JSON_LIMIT and content_type.startswith(b"application/json"):
            try:
                parsed = orjson.loads(b"".join(kept))
            except orjson.JSONDecodeError:
                parsed = None
        await send_json(
            send,
            200,
            {
                "service": self.name,
                "method": scope["method"],
                "path": scope["path"],
                "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": headers,
                "body_length": length,
                "body_sha256": digest.hexdigest(),
                "json": parsed,
            },
        )

    async def _sse(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        count = int(query.get("n", "5"))
        interval = float(query.get("interval", "0.1"))
        gate = self.sse_gate if query.get("gated") == "1" else None
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        # uvicorn swallows sends to a closed connection; watch `receive` to notice the client.
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            for i in range(count):
                if gate is not None and i > 0:
                    await gate.wait()
                    gate.clear()
                event = orjson.dumps({"i": i, "sent_at": time.time()})
                message = b"id: %d\nevent: tick\ndata: %s\n\n" % (i, event)
                await send({"type": "http.response.body", "body": message, "more_body": True})
                self.sse_sent += 1
                if i + 1 < count:
                    try:
                        await asyncio.wait_for(gone.wait(), interval)
                    except TimeoutError:
                        continue
                    self.disconnects += 1
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()

    async def _files(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        size = int(local.split("/")[2])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(size).encode()),
                    (b"content-disposition", f'attachment; filename="file-{size}.bin"'.encode()),
                ],
            }
        )
        step = 64 * 1024
        for offset in range(0, size, step):
            chunk = pattern(min(step, size - offset), offset)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _slow(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        seconds = float(query.get("seconds", "1"))
        await asyncio.sleep(seconds)
        await send_json(send, 200, {"slept": seconds})

    async def _hang(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnects += 1

    async def _status(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        await read_body(receive)
        code = int(local.split("/")[2])
        if query.get("type") == "text":
            await send_bytes(send, code, f"plain failure {code}".encode(), b"text/plain")
            return
        await send_json(send, code, {"detail": f"status {code}", "code": code})

    async def _text(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        await send_bytes(send, 200, f"plain text from {self.name}".encode(), b"text/plain")

    async def _cookie(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        await send_json(
            send,
            200,
            {"cookie": "set"},
            [(b"set-cookie", b"downstream_session=secret; Path=/; HttpOnly")],
        )

    async def _reset(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        media = b"application/json" if query.get("type") == "json" else b"application/octet-stream"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", media), (b"content-length", b"1000000")],
            }
        )
        await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
        await asyncio.sleep(0.05)
        # Returning mid-body makes uvicorn drop the connection.

    async def _enveloped(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        status = int(query.get("status", "200"))
        if status >= 400:
            body: dict[str, Any] = {
                "success": False,
                "message": "conflict in downstream",
                "error": {"code": "DOWNSTREAM_CONFLICT", "details": {"id": 7}},
                "result": None,
            }
        else:
            body = {
                "success": True,
                "message": f"from {self.name}",
                "error": None,
                "result": {"items": [1, 2, 3]},
            }
        await send_json(send, status, body)

    async def _json(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        size = int(query.get("size", "100"))
        body = orjson.dumps({"data": "a" * max(0, size - 12)})
        if query.get("chunked") == "1":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            for i in range(0, len(body), 65536):
                await send(
                    {"type": "http.response.body", "body": body[i : i + 65536], "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
            return
        await send_bytes(send, 200, body, b"application/json")

    async def _redirect(
        self, scope: Scope, receive: Receive, send: Send, local: str, query: dict[str, str]
    ) -> None:
        host, port = scope["server"]
        location = f"http://{host}:{port}{self.base_path}/echo/landed?x=1".encode()
        await send_bytes(send, 302, b"", b"text/plain", [(b"location", location)])


_ROUTED = tuple(
    f"/{name}"
    for name in (
        "sse",
        "files",
        "slow",
        "hang",
        "status",
        "text",
        "cookie",
        "reset",
        "enveloped",
        "json",
        "redirect",
    )
)


async def read_body(receive: Receive) -> bytes:
    """The whole request body (small control requests only)."""
    chunks = []
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    media: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete response with Content-Length."""
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON response."""
    await send_bytes(send, status, orjson.dumps(body), b"application/json", extra)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


DEFAULT_PORTS = {"nexus": 9101, "zen": 9102, "agents": 9103, "ingestion": 9104}
BASE_PATHS = {"agents": "/orchestrator"}


def make_service(
    name: str, username: str | None = None, password: str | None = None
) -> FakeService:
    """A fake for one of the four services, with its base path."""
    return FakeService(name, username, password, BASE_PATHS.get(name, ""))


async def serve_refusing_after_accept(host: str = "127.0.0.1") -> tuple[asyncio.Server, int]:
    """A TCP server that reads the request and closes without answering (a reset downstream)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.close()

    server = await asyncio.start_server(handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    return server, int(port)
