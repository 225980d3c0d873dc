"""Every domain router, mounted under its prefix."""

from __future__ import annotations

from fastapi import FastAPI

from app.audit.router import router as audit_router
from app.auth.dependencies import oauth2_scheme
from app.auth.router import router as auth_router
from app.core.config import Settings
from app.dashboard.router import router as dashboard_router
from app.discovery.router import router as discovery_router
from app.health.router import live_router, ready_router
from app.observability.router import router as metrics_router
from app.proxy.router import include_proxy
from app.rbac.router import router as admin_router


def include(app: FastAPI, settings: Settings) -> None:
    prefix = settings.api_prefix
    app.include_router(live_router)
    app.include_router(metrics_router)
    app.include_router(ready_router, prefix=prefix)
    app.include_router(auth_router, prefix=prefix)
    app.include_router(admin_router, prefix=prefix)
    app.include_router(audit_router, prefix=prefix)
    app.include_router(discovery_router, prefix=prefix)
    app.include_router(dashboard_router, prefix=prefix)
    include_proxy(app, settings)  # last: `{prefix}/{service}/{path}` must not shadow the rest
    # Swagger's Authorize button posts here.
    oauth2_scheme.model.flows.password.tokenUrl = f"{prefix}/auth/token"  # type: ignore[attr-defined]
