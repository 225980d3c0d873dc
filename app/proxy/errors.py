"""Errors of the proxy: unknown services and routes, bad paths, downstream failures."""

from __future__ import annotations

from app.core.errors import NotFound, StudioError


class ServiceNotFound(NotFound):
    code = "SERVICE_NOT_FOUND"
    message = "Service not found"


class RouteNotFound(NotFound):
    code = "ROUTE_NOT_FOUND"
    message = "Route not found"


class InvalidPath(StudioError):
    status_code = 400
    code = "INVALID_PATH"
    message = "Invalid path"


class UpstreamUnavailable(StudioError):
    status_code = 502
    code = "UPSTREAM_UNAVAILABLE"
    message = "Upstream service is unavailable"


class UpstreamTimeout(StudioError):
    status_code = 504
    code = "UPSTREAM_TIMEOUT"
    message = "Upstream service timed out"


class CircuitOpen(StudioError):
    status_code = 503
    code = "CIRCUIT_OPEN"
    message = "Upstream service is temporarily disabled"


class UpstreamBusy(StudioError):
    status_code = 503
    code = "UPSTREAM_BUSY"
    message = "Upstream service has no free connection; retry shortly"
