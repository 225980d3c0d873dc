"""The response side of a proxied call: the envelope for JSON answers, streaming for the rest.

A JSON answer (or a downstream's text error page) of at most the JSON cap is read whole and
put into the envelope, reusing the downstream's JSON text as is; anything else (SSE, files,
larger bodies) streams through chunk by chunk as it arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.types import Message, Scope, Send

from app.core import envelope
from app.core.errors import StudioError
from app.core.logging import get_logger
from app.core.render import render
from app.proxy.body import ClientGone, ClientWatch
from app.proxy.client import UpstreamError, UpstreamResponse
from app.proxy.exchange import as_studio_error, broken_stream
from app.proxy.headers import DownstreamHeaders, inbound, is_json
from app.proxy.state import ServiceRuntime

log = get_logger("studio.proxy")

_BODYLESS_STATUSES = frozenset((204, 304))
_ENVELOPE_DROP = frozenset((b"content-length", b"content-type"))
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")
_EVENT_STREAM = b"text/event-stream"
_OK_PREFIX = envelope.dumps(envelope.ok(None))[: -len(b"null}")]


async def respond(
    service: ServiceRuntime,
    scope: Scope,
    send: Send,
    upstream: UpstreamResponse,
    method: bytes,
    watch: ClientWatch,
    *,
    enveloped: bool,
    json_cap: int,
) -> None:
    """Answer the client with the downstream's response (the caller closes `upstream`)."""
    watch.start()  # a no-op unless the downstream answered before reading the whole body
    scope[envelope.FINAL_BODY] = True
    status = upstream.status
    info = inbound(upstream.headers, service.location)
    chunks = upstream.body()
    buffered: list[bytes] = []
    if enveloped and _envelopable(method, status, info, json_cap):
        try:
            complete = await _read_capped(chunks, buffered, json_cap)
        except UpstreamError as exc:
            broken_stream(service)
            raise as_studio_error(exc, service.name) from None
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
        broken_stream(service)
        log.warning("downstream broke mid-response", service=service.name, error=type(exc).__name__)
        return
    except (StudioError, ClientGone) as exc:
        # The client's body failed (stalled, too large, gone) after the answer had started.
        log.info("client body ended the answer", service=service.name, error=type(exc).__name__)
        return
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    watch.stop()
