"""`GET /metrics`: Prometheus exposition, raw (never the envelope), to allowed networks only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.core.dependencies import AppSettings
from app.core.errors import NotFound
from app.core.network import peer_is_trusted
from app.core.raises import raises
from app.observability import exposition

router = APIRouter(tags=["metrics"])
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@raises(NotFound)
def scraper_allowed(request: Request, settings: AppSettings) -> None:
    """404 unless the TCP peer (never a forwarded header) is in METRICS_ALLOW_CIDRS."""
    if not peer_is_trusted(request.scope, settings.metrics_networks):
        raise NotFound()


@router.get(
    "/metrics",
    operation_id="metrics.get",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition",
            "content": {TEXT_FORMAT: {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus(_: Annotated[None, Depends(scraper_allowed)]) -> Response:
    # Off the event loop: the multiprocess exposition reads files and takes the publisher's lock.
    body, content_type = await run_in_threadpool(exposition.render)
    return Response(body, media_type=content_type)
