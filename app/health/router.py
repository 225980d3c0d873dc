"""Liveness at the root, readiness under the API prefix."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from app.core import envelope
from app.core.dependencies import AppEngine, AppRedis
from app.core.envelope import Envelope
from app.core.errors import DependencyUnavailable
from app.core.raises import raises
from app.core.render import ErrorResponse
from app.discovery.dependencies import RunningChecker
from app.health import service
from app.health.schemas import Liveness, Readiness
from app.registry.dependencies import Live

live_router = APIRouter(tags=["health"])
ready_router = APIRouter(tags=["health"])


@live_router.get("/health", response_model=Envelope[Liveness], operation_id="health.live")
async def liveness() -> dict[str, Any]:
    """The process is up; touches no dependency."""
    return envelope.ok({"status": "ok"}, "Studio is running")


@ready_router.get("/health", response_model=Envelope[Readiness], operation_id="health.ready")
@raises(DependencyUnavailable)  # answered with the report in `error.details`
async def readiness(
    engine: AppEngine, redis: AppRedis, checker: RunningChecker, live: Live
) -> Response:
    """PostgreSQL, Redis and downstream status: 200 when both stores answer, else 503; and
    the version of the service registry this worker serves."""
    ready, report = await service.readiness(engine, redis, checker, live)
    if ready:
        return envelope.EnvelopeResponse(envelope.ok(report, "All dependencies are up"))
    return ErrorResponse(DependencyUnavailable(details=report))
