"""`GET /metrics`: Prometheus exposition, raw (never the envelope), to allowed networks only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from app.core.dependencies import AppSettings
from app.core.errors import NotFound
from app.core.network import peer_is_trusted
from app.observability import exposition

router = APIRouter(include_in_schema=False)


def scraper_allowed(request: Request, settings: AppSettings) -> None:
    """404 unless the TCP peer (never a forwarded header) is in METRICS_ALLOW_CIDRS."""
    if not peer_is_trusted(request.scope, settings.metrics_networks):
        raise NotFound()


@router.get("/metrics")
async def prometheus(_: Annotated[None, Depends(scraper_allowed)]) -> Response:
    body, content_type = exposition.render()
    return Response(body, media_type=content_type)
