"""One relayed WebSocket, from the upgrade to its last close: the ASGI handler.

Read top to bottom, `relay` is the whole life of a socket:

1. admit: the caller and the permission (`upgrade.py`; 401, 403), the per-user cap (429; 503
   when Redis does not answer: fail closed);
2. connect: the service, with its Basic Auth and Studio's headers (`downstream.py`; 502, 503,
   504, or the service's own refusal);
3. accept with the subprotocol the service chose, and relay (`pump.py`) until a side closes or
   Studio ends the socket (`hub.py`: 4401, 4403, 1001);
4. one access-log line with the duration and the close code.

Every refusal is an HTTP answer in the envelope, sent before the upgrade is accepted.
"""

from __future__ import annotations

import os
import time

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from app.core.errors import DependencyUnavailable, StudioError
from app.core.logging import get_logger
from app.core.request_id import accept_or_new
from app.identity.principal import Principal
from app.websocket import metrics
from app.websocket.downstream import (
    DownstreamRefused,
    Target,
    connect,
    handshake_headers,
    subprotocols,
)
from app.websocket.front import Front
from app.websocket.hub import OpenSocket
from app.websocket.pump import Activity, Ending, run
from app.websocket.refusal import refuse
from app.websocket.upgrade import admit

access = get_logger("studio.access")


async def relay(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    front: Front,
    target: Target,
    permission: str,
    tail: str,
) -> None:
    """Serve one `websocket` scope for `target` under `permission` (`tail`: the path below the
    service's prefix, already validated)."""
    started = time.perf_counter()
    state = scope.setdefault("state", {})
    # Set by RequestContextMiddleware, with the client's address and public origin; a bare
    # mount (tests, an embedding) settles the id here.
    request_id: str = state.get("request_id") or accept_or_new(
        Headers(scope=scope).get("x-request-id")
    )
    state["request_id"] = request_id
    if (await receive())["type"] != "websocket.connect":
        return
    hub = front.hub
    socket_id = os.urandom(12).hex()
    principal: Principal | None = None
    try:
        if hub.closing:
            raise _shutting_down()
        principal = await admit(scope, front.identify, permission, front.cookie_policy)
        await hub.quota.take(principal.user_id, socket_id)
        try:
            downstream = await connect(
                front.session,
                target,
                tail,
                scope.get("query_string", b""),
                handshake_headers(scope, target, principal),
                subprotocols(scope),
            )
        except BaseException:
            await hub.quota.release(principal.user_id, socket_id)
            raise
    except (StudioError, DownstreamRefused) as exc:
        answer = exc.rendered if isinstance(exc, DownstreamRefused) else exc
        status = await refuse(scope, send, answer, request_id)
        metrics.REFUSED.labels(target.service, str(status)).inc()
        _log(scope, target, principal, request_id, started, status=status)
        return

    socket = OpenSocket(
        socket_id=socket_id,
        service=target.service,
        user_id=principal.user_id,
        session_id=principal.session_id,
        session_key=hub.store.session_key(principal.user_id, principal.session_id),
        permission=permission,
    )
    activity = Activity()
    ending = Ending(1011, "relay failed", "studio")
    hub.add(socket)
    metrics.OPEN.labels(target.service).inc()
    try:
        accept: dict[str, object] = {
            "type": "websocket.accept",
            "headers": [(b"x-request-id", request_id.encode("ascii"))],
        }
        if downstream.protocol:
            accept["subprotocol"] = downstream.protocol
        await send(accept)
        ending = await run(
            receive,
            send,
            downstream,
            socket.stopped,
            activity,
            limit=target.max_message_bytes,
            idle=target.idle_timeout,
            service=target.service,
        )
    finally:
        hub.remove(socket)
        metrics.OPEN.labels(target.service).dec()
        metrics.CLOSES.labels(target.service, str(ending.code)).inc()
        if not downstream.closed:
            await downstream.close()
        await hub.quota.release(principal.user_id, socket_id)
        _log(
            scope,
            target,
            principal,
            request_id,
            started,
            status=101,
            ending=ending,
            activity=activity,
        )


def _shutting_down() -> StudioError:
    return DependencyUnavailable("Studio is shutting down", headers={"Retry-After": "1"})


def _log(
    scope: Scope,
    target: Target,
    principal: Principal | None,
    request_id: str,
    started: float,
    *,
    status: int,
    ending: Ending | None = None,
    activity: Activity | None = None,
) -> None:
    fields: dict[str, object] = {
        "request_id": request_id,
        "method": "GET",
        "path": scope.get("path", "")[:512],
        "service": target.service,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "user_id": principal.user_id if principal else None,
    }
    if ending is not None:
        fields.update(close_code=ending.code, closed_by=ending.by)
    if activity is not None:
        fields.update(messages_in=activity.upstream, messages_out=activity.downstream)
    access.info("websocket", **fields)
