"""The fast lane for proxied requests (`RUNTIME_FAST_LANE`).

A request for a registry service goes through Studio's own middleware (built from the same
list as for every other request: request id, access log, metrics, security headers, CORS,
limits; not the envelope safety net, which never touches a proxied body) straight to the proxy
route. It skips what only Studio's own routes need: FastAPI's telemetry and body-limit layers,
Starlette's exception layer (the request-context middleware already turns a crash into the 500
envelope, and the proxy renders its own errors), the dependency exit stack and route matching.

The lane branches off inside the outermost layer of the stack FastAPI builds, so whatever
wraps that stack wraps the lane too: the OpenTelemetry middleware of a traced app gives a
proxied request the same server span either way. Measured in BENCHMARKS.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.middleware import EnvelopeMiddleware
from app.proxy.router import MATCHED_SERVICE, ProxyRoute


class ProxyLane:
    """Sends a request `StudioApp` matched to the proxy down the lane, every other one on."""

    def __init__(self, lane: ASGIApp, rest: ASGIApp) -> None:
        self.lane = lane
        self.rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(MATCHED_SERVICE) is not None:
            await self.lane(scope, receive, send)
        else:
            await self.rest(scope, receive, send)


class StudioApp(FastAPI):
    """FastAPI with a fast lane for proxied requests, once `enable_proxy_lane` was called."""

    _proxy_route: ProxyRoute | None = None
    _lane: ASGIApp | None = None  # the lane itself, once the stack is built

    def enable_proxy_lane(self) -> None:
        """Use the fast proxy route placed first by `include_proxy` (none: no lane)."""
        first = self.router.routes[0] if self.router.routes else None
        if isinstance(first, ProxyRoute) and first.shadowed is not None:
            self._proxy_route = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A proxied request enters the built stack directly: FastAPI's own entry would check
        # its native OpenTelemetry hook (global providers, read from the environment) on
        # every request, ~4 % of a worker; Studio traces through the instrumentation inside
        # the stack, which the lane keeps.
        route = self._proxy_route
        if route is not None and scope["type"] == "http":
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                scope["app"] = self
                if self.root_path:
                    scope["root_path"] = self.root_path
                if self.middleware_stack is None:
                    self.middleware_stack = self.build_middleware_stack()
                await self.middleware_stack(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        route = self._proxy_route
        # FastAPI's outermost layer is Starlette's last-resort 500 (what OTel's FastAPI
        # instrumentation also expects): the lane branches off right inside it.
        if route is None or not isinstance(stack, ServerErrorMiddleware):
            return stack
        lane: ASGIApp = route.handle
        for cls, args, kwargs in reversed(self.user_middleware):
            if cls is EnvelopeMiddleware:
                continue  # the proxy marks every body it sends final: this layer would only relay
            lane = cls(lane, *args, **kwargs)
        self._lane = lane
        stack.app = ProxyLane(lane, stack.app)
        return stack
