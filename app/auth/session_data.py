"""What a session holds: the grants written into it, and its fields read back by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

import orjson


@dataclass(frozen=True, slots=True)
class Grants:
    """A permission snapshot and the user's grants version it was read at."""

    roles: list[str]
    permissions: list[str]
    version: int

    def args(self) -> list[str | bytes]:
        return [",".join(self.roles), orjson.dumps(sorted(self.permissions)), str(self.version)]


class SessionFields(NamedTuple):
    """What a Bearer request needs of its session, as Redis answers (bytes; None: missing)."""

    user_id: bytes | None
    email: bytes | None
    roles: bytes | None  # comma-separated
    permissions: bytes | None  # a JSON list
    last_seen_at: bytes | None  # epoch seconds


class CookieSessionFields(NamedTuple):
    """What a cookie request needs: those of `SessionFields` and what cookie mode adds."""

    user_id: bytes | None
    email: bytes | None
    roles: bytes | None
    permissions: bytes | None
    last_seen_at: bytes | None
    mode: bytes | None  # b"cookie" for a cookie-mode session
    secret_hash: bytes | None  # sha256 of the cookie's secret
    csrf: bytes | None
    access_expires_at: bytes | None  # when the access grant needs renewing
    created_at: bytes | None  # the login: a cookie set again must not outlive the session


Fields: TypeAlias = SessionFields | CookieSessionFields
Shape: TypeAlias = type[SessionFields] | type[CookieSessionFields]  # which of them a read asks for

# Their names in the session hash, in order.
HASH_FIELDS: dict[Shape, tuple[str, ...]] = {
    SessionFields: ("uid", "email", "roles", "perms", "seen"),
    CookieSessionFields: (
        "uid",
        "email",
        "roles",
        "perms",
        "seen",
        "mode",
        "csec",
        "csrf",
        "aexp",
        "created",
    ),
}


@dataclass(frozen=True, slots=True)
class SessionData:
    session_id: str
    user_id: str
    email: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    refresh_jti: str
    client_ip: str | None
    user_agent: str | None
    created_at: float
    last_seen_at: float


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (Studio's client answers bytes; redis-py types either)."""
    return value.decode() if isinstance(value, bytes) else value


def decode(sid: str, raw: Mapping[bytes | str, bytes | str]) -> SessionData:
    """A whole session hash (HGETALL) as `SessionData`."""
    fields = {as_text(k): as_text(v) for k, v in raw.items()}

    def s(key: str) -> str:
        return fields.get(key, "")

    roles = s("roles")
    return SessionData(
        session_id=sid,
        user_id=s("uid"),
        email=s("email"),
        roles=tuple(r for r in roles.split(",") if r),
        permissions=frozenset(orjson.loads(s("perms") or "[]")),
        refresh_jti=s("rjti"),
        client_ip=s("ip") or None,
        user_agent=s("ua") or None,
        created_at=float(s("created") or 0),
        last_seen_at=float(s("seen") or 0),
    )
