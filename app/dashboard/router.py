"""`{prefix}/dashboard`: one call for the front page, partial when a source fails."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.core import envelope
from app.core.envelope import Envelope
from app.dashboard import service
from app.identity.dependencies import require
from app.identity.principal import Principal

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_model=Envelope[dict[str, Any]])
async def dashboard(
    principal: Annotated[Principal, Depends(require("dashboard:read"))], request: Request
) -> dict[str, Any]:
    """`result.sources.<key>` is `{ok: true, data}` or `{ok: false, error: CODE}`."""
    state = request.state
    page = await service.build(
        state.proxy,
        state.registry.dashboard,
        principal,
        request_id=state.request_id,
        redis=state.redis,
        prefix=state.settings.redis_key_prefix,
    )
    return envelope.ok(page)
