"""Forward one request to its downstream and stream the answer back (CONTRACT.md §5).

Order of checks, all before a byte leaves Studio: caller (401), path (400), route (404),
permission (403), quota (429), declared body size (413), circuit (503), credentials (503).

Retries: only idempotent methods, only after a connect failure (nothing reached the
downstream), at most `MAX_RETRIES`. A downstream 401 refreshes the service credentials and
resends once, but only when the request body can be replayed: no body, or a body of at most
`REPLAY_BUFFER_BYTES` with a declared length, which is read before sending for that reason.
Larger or chunked bodies stream straight through and their 401 is returned as is.

A client's body may pause at most the service's `write` timeout between two chunks; then the
client gets 408 (or its connection is closed, when the answer has already started) and the
downstream request is aborted. Neither that nor a full pool (`UpstreamBusy`, raised by the
client's `PoolGate`) counts against the circuit breaker: only the downstream's own failures
do. A user has at most `proxy_max_uploads_per_user` streamed bodies in flight (429 beyond).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from app.core import envelope
from app.core.errors import PayloadTooLarge, RequestTimeout, StudioError
from app.core.logging import get_logger
from app.core.render import render
from app.identity.dependencies import authorize, identify
from app.observability.metrics import DownstreamError, observe_downstream, status_error
from app.proxy.client import (
    Body,
    UpstreamConnectError,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from app.proxy.errors import UpstreamTimeout, UpstreamUnavailable
from app.proxy.headers import (
    DownstreamHeaders,
    RawHeaders,
    inbound,
    is_json,
    outbound,
    studio_headers,
)
from app.proxy.pathguard import build_target, split_tail, validate_tail
from app.proxy.routing import Rule
from app.proxy.state import ProxyState, ServiceRuntime
from app.ratelimit.dependencies import enforce

log = get_logger("studio.proxy")

IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"))
MAX_RETRIES = 2
RETRY_BACKOFF = 0.05  # seconds, times the attempt number
REPLAY_BUFFER_BYTES = 64 * 1024
WATCH_AFTER = 0.05  # seconds an answer may take before the client's connection is watched
FAILURE_STATUSES = frozenset((502, 503, 504))
_BODYLESS_STATUSES = frozenset((204, 304))
_ENVELOPE_DROP = frozenset((b"content-length", b"content-type"))
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")
_EVENT_STREAM = b"text/event-stream"
_OK_PREFIX = envelope.dumps(envelope.ok(None))[: -len(b"null}")]


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


async def forward(
    proxy: ProxyState, service: ServiceRuntime, scope: Scope, receive: Receive, send: Send
) -> None:
    """Check, forward and answer one request; raises `StudioError` only before answering."""
    request = Request(scope, receive)
    principal = await identify(request)
    method: str = scope["method"]
    tail = validate_tail(split_tail(_raw_path(scope), service.raw_prefix))
    rule = service.routes.match(method, tail)
    authorize(principal, rule.permission)
    if rule.quota is not None and proxy.quotas_enabled:
        quota = rule.quota
        await enforce(request, [(rule.bucket, principal.user_id, quota.limit, quota.window)])

    client = outbound(scope["headers"])
    limit = service.max_body_bytes
    length = client.content_length
    if length is not None and length > limit and not client.chunked:
        raise PayloadTooLarge(details={"max_body_bytes": limit})
    watch = ClientWatch(receive)
    payload: Body = None
    headers = client.forward
    idle = service.write_timeout
    if client.chunked:
        payload = RequestBody(receive, limit, idle, watch.start)
        headers.append((b"transfer-encoding", b"chunked"))
    elif length:
        if length <= REPLAY_BUFFER_BYTES:
            payload = await RequestBody(receive, limit, idle).read()
            length = len(payload)
        else:
            payload = RequestBody(receive, limit, idle, watch.start)
        headers.append((b"content-length", str(length).encode()))
    elif length == 0:
        headers.append((b"content-length", b"0"))
    headers.extend(studio_headers(scope, service.host_header, principal))
    target = build_target(service.base_path, tail, scope["query_string"])

    uploader: str | None = None
    if isinstance(payload, RequestBody):
        proxy.uploads.acquire(principal.user_id)  # RateLimited: nothing was sent yet
        uploader = principal.user_id
    else:
        watch.start()
    try:
        await _forward(proxy, service, rule, scope, send, method, target, headers, payload, watch)
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        log.info("client left before the answer was complete", service=service.name)
    finally:
        watch.stop()
        if uploader is not None:
            proxy.uploads.release(uploader)


async def _forward(
    proxy: ProxyState,
    service: ServiceRuntime,
    rule: Rule,
    scope: Scope,
    send: Send,
    method: str,
    target: bytes,
    headers: RawHeaders,
    payload: Body,
    watch: ClientWatch,
) -> None:
    method_b = method.encode("ascii")
    breaker = service.breaker
    probe = breaker.acquire()
    started = time.perf_counter()
    try:
        upstream = await _exchange(service, method_b, target, headers, payload)
    except UpstreamError as exc:
        breaker.failure(probe)
        observe_downstream(service.name, None, downstream_error(exc))
        raise _as_studio_error(exc, service.name) from None
    except BaseException:
        breaker.release(probe)
        raise
    observe_downstream(service.name, time.perf_counter() - started, status_error(upstream.status))
    if upstream.status in FAILURE_STATUSES:
        breaker.failure(probe)
    else:
        breaker.success(probe)
    try:
        await _respond(proxy, service, rule, scope, send, upstream, method_b, watch)
    finally:
        await upstream.aclose()


def _raw_path(scope: Scope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        raw = scope["path"].encode("utf-8")
    root: str = scope.get("root_path", "")
    if root:
        root_b = root.encode("utf-8")
        if raw.startswith(root_b):
            raw = raw[len(root_b) :]
    return raw


async def _exchange(
    service: ServiceRuntime, method: bytes, target: bytes, headers: RawHeaders, payload: Body
) -> UpstreamResponse:
    creds, auth = await service.authorization()
    upstream = await _send(service, method, target, headers, auth, payload)
    if upstream.status != 401 or creds is None or not isinstance(payload, bytes | None):
        return upstream
    try:
        fresh, fresh_auth = await service.authorization(refresh=True)
    except BaseException:
        await upstream.aclose()
        raise
    if fresh is None or fresh == creds:
        return upstream  # nothing rotated: the same request would get the same 401
    log.info("downstream refused credentials; retrying with refreshed ones", service=service.name)
    await upstream.aclose()
    return await _send(service, method, target, headers, fresh_auth, payload)


async def _send(
    service: ServiceRuntime,
    method: bytes,
    target: bytes,
    headers: RawHeaders,
    auth: bytes | None,
    payload: Body,
) -> UpstreamResponse:
    if auth is not None:
        headers = [*headers, (b"authorization", auth)]
    attempts = 1 + MAX_RETRIES if method in IDEMPOTENT else 1
    attempt = 0
    while True:
        try:
            return await service.client.send(method, target, headers, payload)
        except UpstreamConnectError:
            attempt += 1
            # A started body is gone: it cannot be sent a second time.
            if attempt >= attempts or (isinstance(payload, RequestBody) and payload.started):
                raise
        await asyncio.sleep(RETRY_BACKOFF * attempt)


def downstream_error(exc: UpstreamError) -> DownstreamError:
    """The metrics' kind for a failed exchange."""
    if isinstance(exc, UpstreamTimeoutError):
        return DownstreamError.TIMEOUT
    return DownstreamError.UNAVAILABLE


def _as_studio_error(exc: UpstreamError, service: str) -> StudioError:
    log.warning("downstream failed", service=service, error=type(exc).__name__, reason=str(exc))
    if isinstance(exc, UpstreamTimeoutError):
        return UpstreamTimeout(f"Service {service!r} timed out", details={"service": service})
    return UpstreamUnavailable(f"Service {service!r} is unavailable", details={"service": service})


# Response side


async def _respond(
    proxy: ProxyState,
    service: ServiceRuntime,
    rule: Rule,
    scope: Scope,
    send: Send,
    upstream: UpstreamResponse,
    method: bytes,
    watch: ClientWatch,
) -> None:
    watch.start()  # a no-op unless the downstream answered before reading the whole body
    scope[envelope.FINAL_BODY] = True
    status = upstream.status
    info = inbound(upstream.headers, service.location)
    chunks = upstream.body()
    buffered: list[bytes] = []
    if rule.envelope and _envelopable(method, status, info, proxy.json_cap):
        try:
            complete = await _read_capped(chunks, buffered, proxy.json_cap)
        except UpstreamError as exc:
            service.breaker.failure(False)
            observe_downstream(service.name, None, DownstreamError.BROKEN_STREAM)
            raise _as_studio_error(exc, service.name) from None
        if complete:
            body = _normalise(b"".join(buffered), status, info.media, service.name)
            if body is not None:
                headers = [h for h in info.forward if h[0] not in _ENVELOPE_DROP]
                headers.append(_JSON_CONTENT_TYPE)
                headers.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                watch.stop()
                return
    start = {"type": "http.response.start", "status": status, "headers": info.forward}
    await _stream(service, send, start, buffered, chunks, watch)


def _envelopable(method: bytes, status: int, info: DownstreamHeaders, cap: int) -> bool:
    if method == b"HEAD" or status < 200 or status in _BODYLESS_STATUSES or info.encoded:
        return False
    if info.content_length is not None and info.content_length > cap:
        return False
    if is_json(info.media):
        return True
    # A downstream error page (text or no type) still reaches the client as an error envelope.
    media = info.media
    return status >= 400 and (not media or media.startswith(b"text/")) and media != _EVENT_STREAM


async def _read_capped(chunks: AsyncIterator[bytes], into: list[bytes], cap: int) -> bool:
    """Read into `into` until the end (True) or past `cap` bytes (False, rest unread)."""
    size = 0
    async for chunk in chunks:
        into.append(chunk)
        size += len(chunk)
        if size > cap:
            return False
    return True


def _normalise(raw: bytes, status: int, media: bytes, service: str) -> bytes | None:
    """The enveloped body, `raw` itself when already an envelope, None to pass it untouched."""
    decoded: object = None
    valid_json = b""  # the downstream's JSON text, reused as is instead of re-serialised
    if is_json(media):
        stripped = raw.strip()
        if stripped:
            try:
                decoded = orjson.loads(stripped)
                valid_json = stripped
            except orjson.JSONDecodeError:
                if status < 400:
                    return None  # mislabelled, not ours to fix
                decoded = raw.decode("utf-8", "replace")
    elif raw:
        decoded = raw.decode("utf-8", "replace")
    if envelope.is_envelope(decoded):
        return raw
    if status < 400:
        if valid_json:
            return _OK_PREFIX + valid_json + b"}"
        return envelope.dumps(envelope.ok(decoded))
    message = f"Service {service!r} answered {status} {envelope.reason(status)}"
    return render(status, "DOWNSTREAM_ERROR", message, decoded).body


async def _stream(
    service: ServiceRuntime,
    send: Send,
    start: Message,
    buffered: list[bytes],
    chunks: AsyncIterator[bytes],
    watch: ClientWatch,
) -> None:
    """Pass the body through chunk by chunk, as it arrives."""
    await send(start)
    try:
        for chunk in buffered:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        async for chunk in chunks:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    # No final message in either case: the server drops the connection, so the client sees a
    # truncated response instead of one that looks complete.
    except UpstreamError as exc:
        service.breaker.failure(False)
        observe_downstream(service.name, None, DownstreamError.BROKEN_STREAM)
        log.warning("downstream broke mid-response", service=service.name, error=type(exc).__name__)
        return
    except (StudioError, ClientGone) as exc:
        # The client's body failed (stalled, too large, gone) after the answer had started.
        log.info("client body ended the answer", service=service.name, error=type(exc).__name__)
        return
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    watch.stop()
