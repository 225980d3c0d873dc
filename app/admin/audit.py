"""`{prefix}/admin/audit`: the audit log, newest first, with a cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.audit import service
from app.audit.schemas import AuditEventRead, AuditPage
from app.core import envelope
from app.core.db import DbSession
from app.core.envelope import Envelope
from app.core.params import NO_NUL
from app.identity.dependencies import require

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/audit",
    response_model=Envelope[AuditPage],
    dependencies=[Depends(require("audit:read"))],
    operation_id="admin.audit.list",
)
async def list_audit(
    db: DbSession,
    actor: Annotated[
        str | None, Query(max_length=320, pattern=NO_NUL, description="user id or email")
    ] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
) -> dict[str, Any]:
    """Audit events filtered by actor, action and time; pass `next_cursor` for the next page."""
    events, next_cursor = await service.search(
        db, actor=actor, action=action, since=since, until=until, limit=limit, cursor=cursor
    )
    return envelope.ok(
        AuditPage(items=[AuditEventRead.model_validate(e) for e in events], next_cursor=next_cursor)
    )
