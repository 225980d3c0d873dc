"""`{prefix}/discovery`: the services a caller may use, and their health."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.core import envelope
from app.core.envelope import ALWAYS_SENT, Envelope
from app.core.raises import raises
from app.discovery.checker import ServiceHealth
from app.discovery.dependencies import Checker
from app.identity.dependencies import CurrentPrincipal
from app.identity.principal import Principal
from app.proxy.dependencies import Proxy
from app.proxy.errors import ServiceNotFound
from app.proxy.state import ServiceRuntime
from app.registry.dependencies import Live

router = APIRouter(prefix="/discovery", tags=["discovery"])


class ServiceRead(BaseModel):
    model_config = ALWAYS_SENT

    name: str
    mode: str
    description: str | None
    status: str
    circuit: str
    permissions: dict[str, str]
    can_read: bool
    can_write: bool
    path: str
    base_url: str | None = None  # internal address: admins only
    registry_version: str | None = Field(
        None, description="Content hash of the service registry this entry comes from"
    )
    registry_loaded_at: datetime | None = Field(None, description="When that registry loaded")


class ServiceHealthRead(BaseModel):
    model_config = ALWAYS_SENT

    service: str
    status: Literal["up", "down", "unknown"]
    latency_ms: float | None
    http_status: int | None
    checked_at: datetime | None


def _usable(principal: Principal, service: ServiceRuntime) -> tuple[bool, bool]:
    perms = service.config.permissions
    return principal.can(perms.read), principal.can(perms.write)


@router.get(
    "/services", response_model=Envelope[list[ServiceRead]], operation_id="discovery.services.list"
)
async def list_services(
    principal: CurrentPrincipal, proxy: Proxy, checker: Checker, live: Live
) -> dict[str, Any]:
    """Services the caller holds a permission for, with mode, status and circuit state, and
    the version of the service registry they come from."""
    services = proxy.services  # one registry: a reload swaps it whole
    loaded = live.current if live is not None else None
    version = services.version
    loaded_at = loaded.loaded_at if loaded is not None and loaded.version == version else None
    snapshot = checker.snapshot()
    items = []
    for name, service in services.items():
        can_read, can_write = _usable(principal, service)
        if not (can_read or can_write):
            continue
        items.append(
            ServiceRead(
                name=name,
                mode=service.config.mode,
                description=service.config.description,
                status=snapshot[name]["status"],
                circuit=snapshot[name]["circuit"],
                permissions=service.config.permissions.model_dump(),
                can_read=can_read,
                can_write=can_write,
                path=f"{proxy.api_prefix}/{name}",
                base_url=str(service.config.base_url) if principal.is_admin else None,
                registry_version=version,
                registry_loaded_at=loaded_at,
            )
        )
    return envelope.ok(items)


@router.get(
    "/services/{name}/health",
    response_model=Envelope[ServiceHealthRead],
    operation_id="discovery.services.health",
)
@raises(ServiceNotFound)
async def service_health(
    name: str, principal: CurrentPrincipal, proxy: Proxy, checker: Checker
) -> dict[str, Any]:
    """The newest health of one service (background checker, or a live probe)."""
    service = proxy.services.get(name)
    if service is None or not any(_usable(principal, service)):
        raise ServiceNotFound(details={"service": name})
    health: ServiceHealth = await checker.current(name)
    return envelope.ok(health.public())
