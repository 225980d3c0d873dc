"""`websocket` scopes under `{prefix}/{service}/...`: from the proxy route to the relay.

The service comes from the registry snapshot the route matched (the same one an HTTP request
gets); the path is checked as the proxy checks it; only a service or route with
`websocket: true` accepts an upgrade, anything else is 404 before any identity check.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from app.core.errors import NotFound, StudioError
from app.core.request_id import accept_or_new
from app.proxy.errors import RouteNotFound, ServiceNotFound
from app.proxy.pathguard import split_tail, validate_tail
from app.proxy.state import ServiceRuntime
from app.websocket.front import STATE_KEY, Front, target_for
from app.websocket.refusal import refuse
from app.websocket.relay import relay


async def serve(
    scope: Scope, receive: Receive, send: Send, service: ServiceRuntime | None, name: str | None
) -> None:
    """Relay one upgrade to `service`, or refuse it in the envelope."""
    front: Front | None = (scope.get("state") or {}).get(STATE_KEY)
    try:
        if service is None:
            raise ServiceNotFound(details={"service": name})
        if front is None:
            raise NotFound("WebSockets are not served here")
        tail = validate_tail(split_tail(_raw_path(scope), service.raw_prefix))
        rule = service.routes.match("GET", tail)
        if not rule.websocket:
            raise RouteNotFound(
                "No WebSocket at this path", details={"service": service.name, "websocket": False}
            )
    except StudioError as exc:
        if (await receive())["type"] == "websocket.connect":
            request_id = accept_or_new(Headers(scope=scope).get("x-request-id"))
            await refuse(scope, send, exc, request_id)
        return
    limits = service.config.websocket_limits
    target = target_for(
        service,
        max_message_bytes=limits.max_message_bytes,
        idle_timeout=limits.idle_timeout,
        ping_interval=front.ping_interval,
    )
    await relay(
        scope,
        receive,
        send,
        front=front,
        target=target,
        permission=rule.permission,
        tail="/" + tail.decode("latin-1"),
    )


def _raw_path(scope: Scope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        raw = scope["path"].encode("utf-8")
    root: str = scope.get("root_path", "")
    if root and raw.startswith(root.encode("utf-8")):
        raw = raw[len(root.encode("utf-8")) :]
    return raw
