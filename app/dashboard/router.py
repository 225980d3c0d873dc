"""`{prefix}/dashboard`: one call for the front page, partial when a source fails."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from app.core import envelope
from app.core.dependencies import AppRedis, AppSettings, RequestId
from app.core.envelope import Envelope
from app.dashboard import service
from app.dashboard.schemas import DashboardPage
from app.identity.dependencies import require
from app.identity.principal import Principal
from app.proxy.dependencies import Proxy
from app.registry.dependencies import Registry

router = APIRouter(tags=["dashboard"])


# Unset fields stay out: a slot carries `http_status` only when the source answered an error.
@router.get(
    "/dashboard",
    response_model=Envelope[DashboardPage],
    response_model_exclude_unset=True,
    operation_id="dashboard.get",
)
async def dashboard(
    principal: Annotated[Principal, Depends(require("dashboard:read"))],
    proxy: Proxy,
    registry: Registry,
    request_id: RequestId,
    redis: AppRedis,
    settings: AppSettings,
) -> dict[str, Any]:
    """`result.sources.<key>` is `{ok: true, data}` or `{ok: false, error: CODE}`."""
    page = await service.build(
        proxy,
        registry.dashboard,
        principal,
        request_id=request_id,
        redis=redis,
        prefix=settings.redis_key_prefix,
    )
    return envelope.ok(page)
