"""Liveness at the root, readiness under the API prefix."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.core import envelope
from app.core.envelope import Envelope
from app.core.errors import DependencyUnavailable
from app.core.render import ErrorResponse
from app.health import service

live_router = APIRouter(tags=["health"])
ready_router = APIRouter(tags=["health"])


@live_router.get("/health", response_model=Envelope[dict[str, str]])
async def liveness() -> dict[str, Any]:
    """The process is up; touches no dependency."""
    return envelope.ok({"status": "ok"}, "Studio is running")


@ready_router.get("/health", response_model=Envelope[dict[str, Any]])
async def readiness(request: Request) -> Response:
    """PostgreSQL, Redis and downstream status: 200 when both stores answer, else 503."""
    ready, report = await service.readiness(request.state)
    if ready:
        return envelope.EnvelopeResponse(envelope.ok(report, "All dependencies are up"))
    return ErrorResponse(DependencyUnavailable(details=report))
