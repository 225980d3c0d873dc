"""Audit API bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor_id: uuid.UUID | None
    actor_email: str | None
    action: str
    target: str | None
    outcome: str
    client_ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    next_cursor: str | None
