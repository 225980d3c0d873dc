"""Audit events: written in the caller's transaction, queried with a keyset cursor."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from fastapi import Request
from sqlalchemy import String, Table, and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.errors import ValidationFailed
from app.core.types import utcnow


class Action:
    """Every audited action (CONTRACT.md §4)."""

    REGISTER = "auth.register"
    LOGIN = "auth.login"
    REFRESH = "auth.refresh"
    TOKEN_REUSE = "auth.token_reuse"
    LOGOUT = "auth.logout"
    PASSWORD_CHANGE = "auth.password_change"
    SESSION_REVOKE = "auth.session_revoke"
    USER_UPDATE = "admin.user_update"
    ROLE_CREATE = "admin.role_create"
    ROLE_UPDATE = "admin.role_update"
    ADMIN_CREATE = "admin.create_admin"
    AUDIT_PURGE = "admin.audit_purge"


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who and where, taken from the request once."""

    request_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    actor_id: uuid.UUID | None = None
    actor_email: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_request(cls, request: Request) -> AuditContext:
        state = request.scope.get("state", {})
        return cls(
            request_id=state.get("request_id"),
            client_ip=state.get("client_ip"),
            user_agent=_fit("user_agent", request.headers.get("user-agent") or None),
        )

    def by(self, actor_id: uuid.UUID | str | None, actor_email: str | None) -> AuditContext:
        """The same context with an actor."""
        uid = uuid.UUID(str(actor_id)) if actor_id else None
        return AuditContext(self.request_id, self.client_ip, self.user_agent, uid, actor_email)


_TABLE = cast(Table, AuditEvent.__table__)
_INSERT = insert(_TABLE)
# Every bounded text column: what a caller hands in is cut to fit, so recording an event
# (a failed login with a 300-character email) can never fail the action it records.
_LIMITS = {
    c.name: c.type.length for c in _TABLE.columns if isinstance(c.type, String) and c.type.length
}


def _fit(column: str, value: str | None) -> str | None:
    if value is None:
        return None
    limit = _LIMITS[column]
    return value if len(value) <= limit else value[:limit]


async def record(
    session: AsyncSession,
    ctx: AuditContext,
    action: str,
    *,
    target: str | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """Write an event in the session's transaction; it commits with the change it records.

    One Core INSERT, not an ORM object: the unit of work's bookkeeping was a measurable part
    of every login (BENCHMARKS.md)."""
    await session.execute(
        _INSERT,
        {
            "occurred_at": utcnow(),
            "actor_id": ctx.actor_id,
            "actor_email": _fit("actor_email", ctx.actor_email),
            "action": _fit("action", action),
            "target": _fit("target", target),
            "outcome": _fit("outcome", outcome),
            "client_ip": _fit("client_ip", ctx.client_ip),
            "user_agent": _fit("user_agent", ctx.user_agent),
            "request_id": _fit("request_id", ctx.request_id),
            "details": details,
        },
    )


def encode_cursor(event: AuditEvent) -> str:
    raw = f"{event.occurred_at.isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        return datetime.fromisoformat(when), int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("Invalid cursor", details=[{"loc": ["query", "cursor"]}]) from exc


async def search(
    session: AsyncSession,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """Newest first; `actor` is a user id or an email; returns (events, next cursor)."""
    query = select(AuditEvent)
    if actor:
        try:
            query = query.where(AuditEvent.actor_id == uuid.UUID(actor))
        except ValueError:
            query = query.where(AuditEvent.actor_email == actor.strip().lower())
    if action:
        query = query.where(AuditEvent.action == action)
    if since:
        query = query.where(AuditEvent.occurred_at >= since)
    if until:
        query = query.where(AuditEvent.occurred_at < until)
    if cursor:
        when, ident = decode_cursor(cursor)
        query = query.where(
            or_(
                AuditEvent.occurred_at < when,
                and_(AuditEvent.occurred_at == when, AuditEvent.id < ident),
            )
        )
    query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more and rows else None


async def purge(session: AsyncSession, retention_days: int) -> int:
    """Delete events older than the retention; returns how many."""
    cutoff = utcnow() - timedelta(days=retention_days)
    result = await session.execute(delete(AuditEvent).where(AuditEvent.occurred_at < cutoff))
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
