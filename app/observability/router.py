"""`GET /metrics`: Prometheus exposition, raw (never the envelope)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.observability import metrics

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def prometheus() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
