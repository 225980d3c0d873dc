"""`UpstreamClient` over aiohttp: one `ClientSession` (one `TCPConnector`) per service.

Chosen by measurement as the forwarder's default (BENCHMARKS.md): on the authenticated proxied
GET it serves several times the requests per second of the httpcore pool on the same CPU.
Configured like the httpcore client, to be a transparent pipe: no cookie jar (a downstream
`Set-Cookie` is never replayed for another user), no automatic `User-Agent`/`Accept`/
`Accept-Encoding`/`Content-Type`, no decompression, no redirects followed, and the raw path
and query sent byte for byte (`yarl.URL(..., encoded=True)`). The session is created on first
use, inside the running loop of the worker that uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from app.proxy.client import (
    KEEPALIVE_EXPIRY,
    Body,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from app.registry.schema import ServiceConfig

# Headers aiohttp would otherwise add on its own; the forwarder sends exactly what it chose.
SKIP_AUTO_HEADERS = frozenset(("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
READ_BUFFER = 64 * 1024


def _translate(exc: BaseException) -> UpstreamError:
    name = type(exc).__name__
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):  # ServerTimeoutError included
        return UpstreamTimeoutError(name)
    if isinstance(exc, aiohttp.ClientConnectorError):  # nothing reached the downstream
        return UpstreamConnectError(name)
    return UpstreamProtocolError(name)


_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError, OSError)


class AiohttpResponse:
    """`UpstreamResponse` over an aiohttp response (body not read yet)."""

    __slots__ = ("_response", "_upload", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, upload: _Upload | None = None) -> None:
        self._response = response
        self._upload = upload
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
        """Return the connection to the pool when the body was read to the end, else close it."""
        response = self._response
        if response.content.at_eof():
            response.release()
        else:
            response.close()


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
    ) -> None:
        literal = f"[{host}]" if ":" in host else host  # IPv6 literals need brackets in a URL
        self._origin = f"{scheme}://{literal}:{port}"
        self._max_connections = max_connections
        # aiohttp has no write timeout: a stalled upload is bounded by the read timeout that
        # follows it (and by the client's own connection). `connect` covers the pool wait too.
        self.write_timeout = write
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=pool + connect, sock_connect=connect, sock_read=read
        )
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def for_service(cls, config: ServiceConfig) -> AiohttpUpstreamClient:
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
        )

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
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
        fields: CIMultiDict[str] = CIMultiDict(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in headers
        )
        upload = None if body is None or isinstance(body, bytes) else _Upload(body)
        data = body if upload is None else upload.chunks()
        if upload is not None and "Content-Length" not in fields:
            fields.popall("Transfer-Encoding", None)  # aiohttp chunks a streamed body itself
        try:
            response = await session.request(
                method.decode("ascii"),
                url,
                headers=fields,
                data=data,
                allow_redirects=False,
                compress=None,
            )
        except _TRANSPORT_ERRORS as exc:
            raise _reraise(exc, upload) from exc
        return AiohttpResponse(response, upload)

    async def aclose(self) -> None:
        """Close the session and every pooled connection."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Upload:
    """The request body as aiohttp reads it, remembering why it stopped early: aiohttp reports
    a failing body as a connection error, but the forwarder must see its own exception (413
    over the limit, the client gone) exactly as the body raised it."""

    __slots__ = ("body", "error")

    def __init__(self, body: AsyncIterable[bytes]) -> None:
        self.body = body
        self.error: BaseException | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.body:
                yield chunk
        except Exception as exc:
            self.error = exc
            raise


def _reraise(exc: BaseException, upload: _Upload | None) -> UpstreamError | BaseException:
    if upload is not None and upload.error is not None:
        return upload.error
    return _translate(exc)
