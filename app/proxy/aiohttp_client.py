"""`UpstreamClient` over aiohttp: one `ClientSession` (one `TCPConnector`) per service.

Chosen by measurement as Studio's one HTTP client (BENCHMARKS.md): on the authenticated proxied
GET it serves several times the requests per second of httpx's own pool (httpcore), and about
twice those of `httpx.AsyncClient` over an aiohttp transport, on the same CPU.
Configured to be a transparent pipe: no cookie jar (a downstream
`Set-Cookie` is never replayed for another user), no automatic `User-Agent`/`Accept`/
`Accept-Encoding`/`Content-Type`, no decompression, no redirects followed, and the raw path
and query sent byte for byte (`yarl.URL(..., encoded=True)`). The session is created on first
use, inside the running loop of the worker that uses it.

Header bytes travel unchanged. aiohttp serialises header strings as UTF-8, so values are
decoded as UTF-8; a value that is not valid UTF-8 (legal in HTTP as obs-text) is decoded with
`surrogateescape` and that request's header block is serialised by `_serialize_headers`
below, which encodes it back byte for byte (aiohttp's own serialiser would drop the escapes).
Tested against aiohttp 3.14.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextvars import ContextVar

import aiohttp
from aiohttp import http_writer
from multidict import CIMultiDict
from yarl import URL

from app.proxy.client import (
    KEEPALIVE_EXPIRY,
    Body,
    PoolGate,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from app.registry.schema import ServiceConfig

# Headers aiohttp would otherwise add on its own; the forwarder sends exactly what it chose.
SKIP_AUTO_HEADERS = frozenset(("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
READ_BUFFER = 64 * 1024

Fields = CIMultiDict[str]

# Set only while sending a request whose headers hold bytes that are not UTF-8.
_ESCAPED: ContextVar[bool] = ContextVar("studio_escaped_headers", default=False)
_native_serialize = http_writer._serialize_headers
# RFC 9110 §5.5: no CR, LF, NUL or other controls but HTAB (aiohttp refuses them too).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _serialize_headers(status_line: str, headers: Fields) -> bytes:
    if not _ESCAPED.get():
        return _native_serialize(status_line, headers)
    lines = [status_line, *(f"{k}: {v}" for k, v in headers.items())]
    for line in lines:
        if _FORBIDDEN.search(line) is not None:
            raise ValueError("Forbidden control character in headers")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


http_writer._serialize_headers = _serialize_headers


def _fields(headers: Sequence[tuple[bytes, bytes]]) -> tuple[Fields, bool]:
    """The headers as aiohttp takes them, and whether any byte needed `surrogateescape`."""
    try:
        return CIMultiDict((k.decode(), v.decode()) for k, v in headers), False
    except UnicodeDecodeError:
        escaped = (
            (k.decode(errors="surrogateescape"), v.decode(errors="surrogateescape"))
            for k, v in headers
        )
        return CIMultiDict(escaped), True


def _translate(exc: BaseException) -> UpstreamError:
    name = type(exc).__name__
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):  # ServerTimeoutError included
        return UpstreamTimeoutError(name)
    if isinstance(exc, aiohttp.ClientConnectorError):  # nothing reached the downstream
        return UpstreamConnectError(name)
    return UpstreamProtocolError(name)


_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError, OSError)


class AiohttpResponse:
    """`UpstreamResponse` over an aiohttp response (body not read yet); holds a `PoolGate`
    slot until closed."""

    __slots__ = ("_gate", "_response", "_upload", "headers", "status")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        upload: _Upload | None = None,
        gate: PoolGate | None = None,
    ) -> None:
        self._response = response
        self._upload = upload
        self._gate = gate
        if upload is not None:
            upload.answered(response)
        self.status = response.status
        self.headers: list[tuple[bytes, bytes]] = list(response.raw_headers)

    async def body(self) -> AsyncIterator[bytes]:
        """The body chunks as they arrive, with transport errors translated."""
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except _TRANSPORT_ERRORS as exc:
            raise _reraise(exc, self._upload) from exc

    async def aclose(self) -> None:
        """Return the connection to the pool when both bodies went through to the end, else
        close it (a connection with half a request on it can never be reused)."""
        response = self._response
        upload = self._upload
        if response.content.at_eof() and (upload is None or upload.finished):
            response.release()
        else:
            response.close()
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()


class AiohttpUpstreamClient:
    """`UpstreamClient` over one aiohttp session and connector."""

    def __init__(
        self,
        *,
        scheme: str,
        host: str,
        port: int,
        max_connections: int,
        connect: float,
        read: float,
        write: float,
        pool: float,
        name: str = "",
    ) -> None:
        literal = f"[{host}]" if ":" in host else host  # IPv6 literals need brackets in a URL
        self._origin = f"{scheme}://{literal}:{port}"
        # The gate is the pool's only limit and owns the pool wait: the connector never makes
        # a request wait, so its `connect` timeout is the connect alone and counts as the
        # downstream's failure, while a full pool is `UpstreamBusy`. A client that stalls its
        # upload is bounded by the forwarder (the service's `write` timeout between chunks).
        self.gate = PoolGate(max_connections, pool, name)
        del write  # aiohttp has no write timeout of its own: see above
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect, sock_connect=connect, sock_read=read
        )
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def for_service(cls, config: ServiceConfig, name: str = "") -> AiohttpUpstreamClient:
        """A session sized and timed as the registry says for this service."""
        url = config.base_url
        host = (url.host or "").strip("[]")
        t = config.timeouts
        return cls(
            scheme=url.scheme,
            host=host,
            port=url.port or (443 if url.scheme == "https" else 80),
            max_connections=config.max_connections,
            connect=t.connect,
            read=t.read,
            write=t.write,
            pool=t.pool,
            name=name,
        )

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,  # `self.gate` limits
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_EXPIRY,
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=SKIP_AUTO_HEADERS,
            timeout=self._timeout,
            read_bufsize=READ_BUFFER,
            trust_env=False,
            raise_for_status=False,
        )
        return self._session

    async def send(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: Body
    ) -> AiohttpResponse:
        """Send (streaming `body`) and return once the response headers arrived."""
        if self._closed:
            raise UpstreamConnectError("ClientClosed")
        session = self._session or self._open()
        url = URL(self._origin + target.decode("latin-1"), encoded=True)
        fields, escaped = _fields(headers)
        upload = None if body is None or isinstance(body, bytes) else _Upload(body)
        data = body if upload is None else upload.chunks()
        if upload is not None and "Content-Length" not in fields:
            fields.popall("Transfer-Encoding", None)  # aiohttp chunks a streamed body itself
        gate = self.gate
        if not gate.try_acquire():
            await gate.wait()
        token = _ESCAPED.set(True) if escaped else None
        try:
            response = await session.request(
                method.decode("ascii"),
                url,
                headers=fields,
                data=data,
                allow_redirects=False,
                compress=None,
            )
        except BaseException as exc:
            gate.release()
            if isinstance(exc, _TRANSPORT_ERRORS):
                raise _reraise(exc, upload) from exc
            raise
        finally:
            if token is not None:
                _ESCAPED.reset(token)
        return AiohttpResponse(response, upload, gate)

    async def aclose(self) -> None:
        """Close the session and every pooled connection."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Upload:
    """The request body as aiohttp reads it, remembering why it stopped early: aiohttp reports
    a failing body as a connection error, but the forwarder must see its own exception (413
    over the limit, 408 for a stalled client, the client gone) exactly as the body raised it.
    When the downstream has already answered, aiohttp would keep waiting for the rest of the
    answer: the body's exception is put on the answer's stream instead, so it ends at once."""

    __slots__ = ("_response", "body", "error", "finished")

    def __init__(self, body: AsyncIterable[bytes]) -> None:
        self.body = body
        self.error: Exception | None = None
        self.finished = False
        self._response: aiohttp.ClientResponse | None = None

    def answered(self, response: aiohttp.ClientResponse) -> None:
        """The downstream answered while (or after) the body was sent."""
        self._response = response
        if self.error is not None:
            response.content.set_exception(self.error)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.body:
                yield chunk
        except Exception as exc:
            self.error = exc
            if self._response is not None:
                self._response.content.set_exception(exc)
            raise
        self.finished = True


def _reraise(exc: BaseException, upload: _Upload | None) -> UpstreamError | BaseException:
    if upload is not None and upload.error is not None:
        return upload.error
    return _translate(exc)
