"""Bodies of the health routes."""

from __future__ import annotations

from datetime import datetime
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


class ReloadStatus(BaseModel):
    model_config = ALWAYS_SENT

    outcome: Literal["applied", "unchanged", "rejected"] = Field(
        description="`rejected`: the files are broken and the loaded registry keeps serving"
    )
    at: datetime
    version: str | None = Field(description="Of the files that reload read")


class RegistryStatus(BaseModel):
    model_config = ALWAYS_SENT

    version: str = Field(description="Content hash of the registry files serving now")
    loaded_at: datetime
    last_reload: ReloadStatus | None = Field(description="None until a reload was attempted")


class Checks(BaseModel):
    database: Probe
    redis: Probe
    services: dict[str, ServiceStatus] | None = Field(
        None, description="Each downstream's status (absent when discovery does not run)"
    )
    registry: RegistryStatus | None = Field(
        None, description="The service registry this worker serves (absent in a lean app)"
    )


class Readiness(BaseModel):
    """The report; in `error.details` of the 503 when PostgreSQL or Redis is down."""

    model_config = ALWAYS_SENT

    status: Literal["ok", "unavailable"]
    checks: Checks
