"""`ANY {prefix}/{service}/{path}`: one lean route in front of the forwarder.

A plain Starlette `BaseRoute`, not an `APIRoute`: no dependency solving, no request model, no
response class on the hot path. It answers FULL only for services in the registry; for any
other name it answers PARTIAL, so Studio's own routes under the prefix (which come first or
later, either way) still win, and only a path nobody else claims becomes SERVICE_NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import StudioError
from app.core.render import send_error
from app.proxy import forwarder
from app.proxy.body import ClientGone
from app.proxy.errors import ServiceNotFound
from app.proxy.state import STATE_KEY, ProxyState, ServiceRuntime

MATCHED_SERVICE = "studio.proxy.service"  # scope key: the service a full match found
_NAME = "studio.proxy.name"


ROUTE_LABEL = "studio.route_label"  # read by the metrics middleware
_SCOPES = frozenset(("http", "websocket"))
# The lifespan state's key for the WebSocket relay's entry (`app/websocket/entry.py`), called as
# `(scope, receive, send, service or None, service name)`; absent: upgrades are refused.
UPGRADE_KEY = "proxy.websocket_upgrade"
Upgrade = Callable[[Scope, Receive, Send, ServiceRuntime | None, str | None], Awaitable[None]]


class ProxyRoute(BaseRoute):
    """Matches `{prefix}/{service}/...` and hands the request to the forwarder."""

    def __init__(self, prefix: str, shadowed: frozenset[str] | None = None) -> None:
        self.prefix = prefix
        # Set on the fast copy placed first: names Studio's own routes use as first segment
        # under the prefix, left to those routes (and to the copy at the end) as before.
        self.shadowed = shadowed
        self.path = f"{prefix}/{{service}}/{{path:path}}"
        self.name = "proxy"
        self._start = prefix + "/"
        self._labels: dict[str, str] = {}  # metrics route label per service, built once

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FULL for a registry service, PARTIAL for another name under the prefix."""
        if scope["type"] not in _SCOPES:  # WebSocket upgrades: `app/websocket/entry.py`
            return Match.NONE, {}
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
        if not path.startswith(self._start):
            return Match.NONE, {}
        name, sep, _ = path[len(self._start) :].partition("/")
        if not sep or not name:
            return Match.NONE, {}
        state = scope.get("state")
        proxy: ProxyState | None = state.get(STATE_KEY) if state else None
        # The request's snapshot: one attribute read, no lock; a reload replaces it whole.
        service = proxy.services.get(name) if proxy is not None else None
        if service is None:
            if self.shadowed is not None:
                return Match.NONE, {}
            return Match.PARTIAL, {MATCHED_SERVICE: None, _NAME: name}
        if self.shadowed is not None and name in self.shadowed:
            return Match.NONE, {}
        label = self._labels.get(name)
        if label is None:
            label = self._labels.setdefault(name, f"{self.prefix}/{name}/{{path}}")
        return Match.FULL, {MATCHED_SERVICE: service, ROUTE_LABEL: label}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """Proxied paths are not named routes."""
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward, rendering any refusal as the error envelope."""
        service: ServiceRuntime | None = scope.get(MATCHED_SERVICE)
        if scope["type"] == "websocket":
            upgrade: Upgrade | None = (scope.get("state") or {}).get(UPGRADE_KEY)
            if upgrade is None:
                await send({"type": "websocket.close", "code": 1008})
                return
            await upgrade(scope, receive, send, service, scope.get(_NAME))
            return
        try:
            if service is None:
                raise ServiceNotFound(details={"service": scope.get(_NAME)})
            await forwarder.forward(scope["state"][STATE_KEY], service, scope, receive, send)
        except StudioError as exc:
            await send_error(scope, send, exc)
        except ClientGone:
            return


def include_proxy(app: FastAPI, settings: Settings) -> None:
    """Mount the proxy under `API_PREFIX`; call it after the other routers.

    The route goes last, so nothing of Studio's is shadowed. With `RUNTIME_FAST_LANE` on, a
    copy that claims only the registry services whose name no other route starts with also
    goes first: a proxied request then skips matching against every API route (measured: ~5%
    of a worker's CPU), and the fast lane (`app/runtime/lane.py`) starts from it.
    """
    prefix = settings.api_prefix
    fast = _fast_copy(app, prefix) if settings.runtime_fast_lane else None
    app.router.routes.append(ProxyRoute(prefix))
    if fast is not None:
        app.router.routes.insert(0, fast)


def _fast_copy(app: FastAPI, prefix: str) -> ProxyRoute | None:
    """The copy for the front, or None when a route may claim any name under the prefix."""
    start = prefix + "/"
    owned: set[str] = set()
    for route in app.router.routes:
        path = getattr(route, "path", "")
        if isinstance(path, str) and path.startswith(start):
            first = path[len(start) :].split("/", 1)[0]
            if "{" in first:
                return None
            owned.add(first)
    return ProxyRoute(prefix, frozenset(owned))
