"""Bodies of the health routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.core.envelope import ALWAYS_SENT


class Liveness(BaseModel):
    model_config = ALWAYS_SENT

    status: Literal["ok"]


class Probe(BaseModel):
    model_config = ALWAYS_SENT

    status: Literal["up", "down"]
    latency_ms: float | None


class ServiceStatus(BaseModel):
    model_config = ALWAYS_SENT

    status: Literal["up", "down", "unknown"]
    circuit: str = Field(description="The service's circuit breaker: closed, open or half-open")


class Checks(BaseModel):
    database: Probe
    redis: Probe
    services: dict[str, ServiceStatus] | None = Field(
        None, description="Each downstream's status (absent when discovery does not run)"
    )


class Readiness(BaseModel):
    """The report; in `error.details` of the 503 when PostgreSQL or Redis is down."""

    model_config = ALWAYS_SENT

    status: Literal["ok", "unavailable"]
    checks: Checks
