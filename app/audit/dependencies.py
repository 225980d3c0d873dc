"""The audit context of a request (id, client address, user agent) as a route dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.audit.service import AuditContext

Audit = Annotated[AuditContext, Depends(AuditContext.from_request)]
