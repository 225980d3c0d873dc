"""Sessions in Redis: one hash per session, indexed per user, rotated atomically by Lua."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import RedisError

from app.auth.session_cache import SessionCache
from app.core.errors import DependencyUnavailable

# Every script that extends a session first checks its absolute end: `created` (the login) plus
# the max lifetime (ARGV). Past it the session is deleted (-3, SESSION_EXPIRED); before it the
# key's TTL never reaches beyond it. A permission snapshot (roles, perms, gv) is written only
# when its grants version is not older than the stored one: a slow writer never undoes a newer
# change. A session stored before versions existed has none (-1).

# KEYS: session hash, user's session set. ARGV: presented jti, new jti, ttl ms, now, session id,
# max lifetime s, roles, perms, grants version. One step: a missing session is revoked (0); a jti
# that is not the current one is reuse of a rotated token (-1), which kills the session;
# otherwise the new jti replaces it (1, with the session's end).
# A cookie-mode session's refresh token never leaves Studio, so one presented as Bearer can only
# come from a leak of the session store: refused (-2) without touching the session.
ROTATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
if redis.call('HGET', KEYS[1], 'mode') == 'cookie' then return {-2, ''} end
local now = tonumber(ARGV[4])
local deadline = tonumber(redis.call('HGET', KEYS[1], 'created') or '0') + tonumber(ARGV[6])
if now >= deadline then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[5])
  return {-3, ''}
end
local current = redis.call('HGET', KEYS[1], 'rjti')
if current ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[5])
  return {-1, ''}
end
redis.call('HSET', KEYS[1], 'rjti', ARGV[2], 'seen', ARGV[4])
if tonumber(ARGV[9]) >= tonumber(redis.call('HGET', KEYS[1], 'gv') or '-1') then
  redis.call('HSET', KEYS[1], 'roles', ARGV[7], 'perms', ARGV[8], 'gv', ARGV[9])
end
redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[3]), math.floor((deadline - now) * 1000)))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {1, tostring(deadline)}
"""

# Cookie mode: Studio rotates the refresh token it keeps in the session itself. KEYS: session
# hash, user's session set. ARGV: jti of the stored token, new jti, new token, new access expiry,
# ttl ms, now, max lifetime s, roles, perms, grants version, session id. 0: session gone; -3:
# past its end (deleted); 2: a concurrent request rotated first (the stored token never left
# Studio, so that is a race, not reuse, and the session stays); 1: rotated.
ROTATE_COOKIE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now = tonumber(ARGV[6])
local deadline = tonumber(redis.call('HGET', KEYS[1], 'created') or '0') + tonumber(ARGV[7])
if now >= deadline then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[11])
  return -3
end
if redis.call('HGET', KEYS[1], 'rjti') ~= ARGV[1] then return 2 end
local aexp = math.min(tonumber(ARGV[4]), deadline)
redis.call('HSET', KEYS[1], 'rjti', ARGV[2], 'rtok', ARGV[3], 'aexp', string.format('%.3f', aexp),
  'seen', ARGV[6])
if tonumber(ARGV[10]) >= tonumber(redis.call('HGET', KEYS[1], 'gv') or '-1') then
  redis.call('HSET', KEYS[1], 'roles', ARGV[8], 'perms', ARGV[9], 'gv', ARGV[10])
end
redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[5]), math.floor((deadline - now) * 1000)))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""

# KEYS: session hash. ARGV: roles, perms, grants version ('' : unversioned, always written).
# Only touches a session that still exists.
UPDATE_GRANTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] == '' then
  redis.call('HSET', KEYS[1], 'roles', ARGV[1], 'perms', ARGV[2])
elseif tonumber(ARGV[3]) >= tonumber(redis.call('HGET', KEYS[1], 'gv') or '-1') then
  redis.call('HSET', KEYS[1], 'roles', ARGV[1], 'perms', ARGV[2], 'gv', ARGV[3])
end
return 1
"""

# KEYS: session hash. ARGV: now. Never recreates a session revoked a moment ago.
TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'seen', ARGV[1]) end
return 0
"""

SEEN_EVERY = 60.0  # seconds between last-seen writes: not a write per request

# The clock sessions are created, extended and ended by (tests move it forward).
clock = time.time


@dataclass(frozen=True, slots=True)
class Grants:
    """A permission snapshot and the user's grants version it was read at."""

    roles: list[str]
    permissions: list[str]
    version: int

    def args(self) -> list[str | bytes]:
        return [",".join(self.roles), orjson.dumps(sorted(self.permissions)), str(self.version)]


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


def _decode(sid: str, raw: dict[bytes, bytes]) -> SessionData:
    def s(key: str) -> str:
        return raw.get(key.encode(), b"").decode()

    roles = s("roles")
    return SessionData(
        session_id=sid,
        user_id=s("uid"),
        email=s("email"),
        roles=tuple(r for r in roles.split(",") if r),
        permissions=frozenset(orjson.loads(raw.get(b"perms", b"[]"))),
        refresh_jti=s("rjti"),
        client_ip=s("ip") or None,
        user_agent=s("ua") or None,
        created_at=float(s("created") or 0),
        last_seen_at=float(s("seen") or 0),
    )


class SessionStore:
    """All session state; any Redis failure becomes DEPENDENCY_UNAVAILABLE (fail closed)."""

    FIELDS = ("uid", "email", "roles", "perms", "seen")
    # Cookie mode adds: the mode, sha256 of the cookie's secret, the CSRF token, access expiry,
    # and the login time (a cookie set again must not outlive the session).
    COOKIE_FIELDS = (*FIELDS, "mode", "csec", "csrf", "aexp", "created")

    def __init__(
        self,
        redis: Any,
        prefix: str,
        ttl_seconds: int,
        cache: SessionCache | None = None,
        max_lifetime_seconds: int = 43_200,
    ) -> None:
        self._redis = redis
        self.max_lifetime = max_lifetime_seconds
        self._prefix = prefix
        self.cache = cache
        if cache is not None:
            cache.loader = self._read
        self._ttl_ms = ttl_seconds * 1000
        self._rotate = redis.register_script(ROTATE)
        self._rotate_cookie = redis.register_script(ROTATE_COOKIE)
        self._update = redis.register_script(UPDATE_GRANTS)
        self._touch = redis.register_script(TOUCH)

    # Both keys of a user share a hash tag, so scripts stay on one Redis Cluster slot.
    def session_key(self, user_id: str, sid: str) -> str:
        return f"{self._prefix}{{u:{user_id}}}:s:{sid}"

    def index_key(self, user_id: str) -> str:
        return f"{self._prefix}{{u:{user_id}}}:sessions"

    def ends_at(self, started_at: float) -> float:
        """When a session that started (logged in) at `started_at` ends, however refreshed."""
        return started_at + self.max_lifetime

    async def create(
        self,
        *,
        user_id: str,
        email: str,
        grants: Grants,
        refresh_jti: str,
        client_ip: str | None,
        user_agent: str | None,
        started_at: float,
        session_id: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """Store a new session (with `extra` fields, e.g. cookie mode's); returns its id."""
        sid = session_id or secrets.token_hex(16)
        now = f"{started_at:.3f}"
        key = self.session_key(user_id, sid)
        ttl_ms = min(self._ttl_ms, int(self.max_lifetime * 1000))
        mapping = {
            "uid": user_id,
            "email": email,
            "roles": ",".join(grants.roles),
            "perms": orjson.dumps(sorted(grants.permissions)),
            "gv": str(grants.version),
            "rjti": refresh_jti,
            "ip": client_ip or "",
            "ua": (user_agent or "")[:512],
            "created": now,
            "seen": now,
            **(extra or {}),
        }
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=mapping)
                pipe.pexpire(key, ttl_ms)
                pipe.sadd(self.index_key(user_id), sid)
                pipe.pexpire(self.index_key(user_id), self._ttl_ms)
                await pipe.execute()
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        return sid

    async def load(self, user_id: str, sid: str) -> SessionData | None:
        """The session, or None when it is gone (logged out, revoked, expired)."""
        try:
            raw = await self._redis.hgetall(self.session_key(user_id, sid))
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        if not raw:
            return None
        return _decode(sid, raw)

    async def principal_fields(
        self, user_id: str, sid: str, fields: tuple[str, ...] = FIELDS
    ) -> list[bytes | None]:
        """The fields an authenticated request needs (`FIELDS` first): from the session cache
        when it is live, else in one round trip."""
        key = self.session_key(user_id, sid)
        cache = self.cache
        if cache is None:
            return await self._read(key, fields)
        cached = cache.get(key, fields)
        if cached is not None:
            return cached
        generation = cache.generation
        values = await self._read(key, fields)
        cache.put(key, fields, values, generation)
        return values

    async def _read(self, key: str, fields: tuple[str, ...]) -> list[bytes | None]:
        try:
            values: list[bytes | None] = await self._redis.hmget(key, fields)
            seen = values[4]
            if seen is not None and time.time() - float(seen) > SEEN_EVERY:
                await self._touch(keys=[key], args=[f"{time.time():.3f}"])
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        return values

    async def _changed(self, user_id: str, sid: str) -> None:
        """After a change to a session in Redis: every instance's cache forgets it."""
        if self.cache is not None:
            await self.cache.publish(self.session_key(user_id, sid))

    async def rotate(
        self, user_id: str, sid: str, presented_jti: str, new_jti: str, grants: Grants
    ) -> tuple[int, float]:
        """(outcome, the session's end): 1 rotated (the snapshot is now `grants` unless a newer
        one is stored), 0 session gone, -1 reuse detected (session revoked), -2 a cookie
        session's token, -3 past its max lifetime (session deleted)."""
        try:
            result, deadline = await self._rotate(
                keys=[self.session_key(user_id, sid), self.index_key(user_id)],
                args=[
                    presented_jti,
                    new_jti,
                    self._ttl_ms,
                    f"{clock():.3f}",
                    sid,
                    self.max_lifetime,
                    *grants.args(),
                ],
            )
            if result in (-1, -3, 1):  # gone, or a new snapshot: every instance re-reads
                await self._changed(user_id, sid)
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        return int(result), float(deadline or 0)

    async def cookie_refresh_state(self, user_id: str, sid: str) -> tuple[str | None, float]:
        """The refresh token a cookie-mode session keeps server-side (None when the session is
        gone) and the session's end."""
        try:
            token, created = await self._redis.hmget(
                self.session_key(user_id, sid), ("rtok", "created")
            )
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        if not token:
            return None, 0.0
        return token.decode(), self.ends_at(float(created or 0))

    async def rotate_cookie(
        self,
        user_id: str,
        sid: str,
        presented_jti: str,
        new_jti: str,
        new_token: str,
        access_expires_at: float,
        grants: Grants,
    ) -> int:
        """1 rotated, 2 a concurrent request rotated first, 0 session gone, -3 past its max
        lifetime (session deleted)."""
        try:
            result = await self._rotate_cookie(
                keys=[self.session_key(user_id, sid), self.index_key(user_id)],
                args=[
                    presented_jti,
                    new_jti,
                    new_token,
                    f"{access_expires_at:.3f}",
                    self._ttl_ms,
                    f"{clock():.3f}",
                    self.max_lifetime,
                    *grants.args(),
                    sid,
                ],
            )
            if result in (1, -3):  # a new access expiry and snapshot, or gone
                await self._changed(user_id, sid)
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        return int(result)

    async def revoke(self, user_id: str, sid: str) -> bool:
        """Delete one session; True when it existed."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.session_key(user_id, sid))
                pipe.srem(self.index_key(user_id), sid)
                deleted, _ = await pipe.execute()
            await self._changed(user_id, sid)
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        return bool(deleted)

    async def session_ids(self, user_id: str) -> list[str]:
        try:
            members = await self._redis.smembers(self.index_key(user_id))
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        return sorted(m.decode() for m in members)

    async def live(self, user_id: str) -> list[SessionData]:
        """The user's live sessions; ids of expired ones are pruned from the index."""
        sessions: list[SessionData] = []
        dead: list[str] = []
        for sid in await self.session_ids(user_id):
            data = await self.load(user_id, sid)
            if data is None:
                dead.append(sid)
            else:
                sessions.append(data)
        if dead:
            try:
                await self._redis.srem(self.index_key(user_id), *dead)
            except RedisError as exc:
                raise DependencyUnavailable("Session store is unavailable") from exc
        return sorted(sessions, key=lambda s: s.created_at)

    async def revoke_all(self, user_id: str, *, except_sid: str | None = None) -> int:
        """Revoke every session of a user (but `except_sid`); returns how many."""
        count = 0
        for sid in await self.session_ids(user_id):
            if sid != except_sid and await self.revoke(user_id, sid):
                count += 1
        return count

    async def update_grants(
        self, user_id: str, roles: list[str], permissions: list[str], version: int | None = None
    ) -> None:
        """Give every live session of the user its new permission snapshot at once (with the
        grants `version` it was read at: a session holding a newer one keeps it)."""
        args = [
            ",".join(roles),
            orjson.dumps(sorted(permissions)),
            "" if version is None else str(version),
        ]
        try:
            for sid in await self.session_ids(user_id):
                await self._update(keys=[self.session_key(user_id, sid)], args=args)
                await self._changed(user_id, sid)
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc

    async def count_active(self) -> int:
        """Live sessions across all users (for metrics; SCAN, not KEYS)."""
        count = 0
        async for _ in self._redis.scan_iter(match=f"{self._prefix}{{u:*}}:s:*", count=1000):
            count += 1
        return count
