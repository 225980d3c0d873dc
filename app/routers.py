"""Every domain router, mounted under its prefix."""

from __future__ import annotations

from fastapi import FastAPI

from app.admin.audit import router as audit_router
from app.admin.router import router as admin_router
from app.auth.router import router as auth_router
from app.core.config import Settings
from app.dashboard.router import router as dashboard_router
from app.discovery.router import router as discovery_router
from app.health.router import live_router, ready_router
from app.identity.dependencies import oauth2_scheme
from app.observability.metrics import label_routes
from app.observability.router import router as metrics_router
from app.proxy.router import include_proxy
from app.websocket import refusal as websocket_refusal


def include(app: FastAPI, settings: Settings) -> None:
    prefix = settings.api_prefix
    app.include_router(live_router)
    app.include_router(metrics_router)
    # Each operation's error responses are computed from what it raises (app/core/raises.py).
    app.include_router(ready_router, prefix=prefix)
    app.include_router(auth_router, prefix=prefix)
    app.include_router(admin_router, prefix=prefix)
    app.include_router(audit_router, prefix=prefix)
    app.include_router(discovery_router, prefix=prefix)
    app.include_router(dashboard_router, prefix=prefix)
    under_prefix = (
        ready_router,
        auth_router,
        admin_router,
        audit_router,
        discovery_router,
        dashboard_router,
    )
    label_routes(
        app, [(live_router, ""), (metrics_router, ""), *((r, prefix) for r in under_prefix)]
    )
    include_proxy(app, settings)  # last: `{prefix}/{service}/{path}` must not shadow the rest
    app.router.default = websocket_refusal.unrouted(app.router.default)
    # Swagger's Authorize button posts here.
    oauth2_scheme.model.flows.password.tokenUrl = f"{prefix}/auth/token"  # type: ignore[attr-defined]
