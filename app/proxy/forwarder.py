"""The proxy pipeline: one request to its downstream and the answer back (CONTRACT.md §5).

Read top to bottom, `forward` is the whole path of a proxied request:

1. identify: the caller, by the identity function every route uses (401);
2. match: the path in normal form (400) against the service's routes (404, 405);
3. authorise: the route's permission, by the check `require` uses (403);
4. quota: the route's per-user quota, when it has one (429);
5. request: the declared size (413), the client's body as it streams (`body.py`), the
   headers Studio sends (`headers.py`);
6. exchange: breaker, credentials, retries, metrics (`exchange.py`; 502, 503, 504);
7. respond: the envelope or the stream (`respond.py`).

Every refusal happens before a byte leaves Studio. A body of at most `REPLAY_BUFFER_BYTES`
with a declared length is read first, so that a downstream 401 can be resent with refreshed
credentials; larger or chunked bodies stream straight through. A user has at most
`proxy_max_uploads_per_user` streamed bodies in flight (429 beyond).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from app.core.errors import PayloadTooLarge
from app.core.logging import get_logger
from app.identity.dependencies import authorize, identify
from app.proxy.body import ClientWatch, RequestBody
from app.proxy.client import Body
from app.proxy.errors import ServiceNotFound
from app.proxy.exchange import exchange
from app.proxy.headers import RawHeaders, outbound, studio_headers
from app.proxy.pathguard import build_target, split_tail, validate_tail
from app.proxy.respond import respond
from app.proxy.state import ProxyState, ServiceRuntime
from app.ratelimit.dependencies import enforce

log = get_logger("studio.proxy")

REPLAY_BUFFER_BYTES = 64 * 1024


async def forward(
    proxy: ProxyState, service: ServiceRuntime, scope: Scope, receive: Receive, send: Send
) -> None:
    """Check, forward and answer one request; raises `StudioError` only before answering."""
    if service.retired:
        # Matched just before a reload replaced it, and nothing was sent yet: the request
        # starts on the registry serving now (404 if the reload removed the service).
        service = _serving(proxy, service.name)
    # Counted before the first await: a pool a reload retired closes once this request ends.
    service.enter()
    try:
        request = Request(scope, receive)
        principal = await identify(request)
        method: str = scope["method"]
        tail = validate_tail(split_tail(_raw_path(scope), service.raw_prefix))
        rule = service.routes.match(method, tail)
        authorize(principal, rule.permission)
        if rule.quota is not None and proxy.quotas_enabled:
            quota = rule.quota
            await enforce(request, [(rule.bucket, principal.user_id, quota.limit, quota.window)])

        watch = ClientWatch(receive)
        headers, payload = await _request_body(service, scope, receive, watch)
        headers.extend(studio_headers(scope, service.host_header, principal))
        target = build_target(service.base_path, tail, scope["query_string"])

        uploader: str | None = None
        if isinstance(payload, RequestBody):
            proxy.uploads.acquire(principal.user_id)  # RateLimited: nothing was sent yet
            uploader = principal.user_id
        else:
            watch.start()
        method_b = method.encode("ascii")
        try:
            upstream = await exchange(service, method_b, target, headers, payload)
            try:
                await respond(
                    service,
                    scope,
                    send,
                    upstream,
                    method_b,
                    watch,
                    enveloped=rule.envelope,
                    json_cap=proxy.json_cap,
                )
            finally:
                await upstream.aclose()
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
    finally:
        service.leave()


def _serving(proxy: ProxyState, name: str) -> ServiceRuntime:
    service = proxy.services.get(name)
    if service is None:
        raise ServiceNotFound(details={"service": name})
    return service


async def _request_body(
    service: ServiceRuntime, scope: Scope, receive: Receive, watch: ClientWatch
) -> tuple[RawHeaders, Body]:
    """The client's headers to forward and its body: none, bytes (small, replayable) or a
    `RequestBody` that streams; 413 for a declared length over the service's limit."""
    client = outbound(scope["headers"])
    limit = service.max_body_bytes
    length = client.content_length
    if length is not None and length > limit and not client.chunked:
        raise PayloadTooLarge(details={"max_body_bytes": limit})
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
    return headers, payload


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
