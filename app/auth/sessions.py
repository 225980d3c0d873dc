"""Sessions in Redis: one hash per session, indexed per user, rotated atomically by Lua."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import overload

import orjson
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from app.auth import session_scripts as scripts
from app.auth.session_cache import SessionCache
from app.auth.session_data import (
    HASH_FIELDS,
    CookieSessionFields,
    Fields,
    Grants,
    SessionData,
    SessionFields,
    Shape,
    as_text,
    decode,
)
from app.auth.session_scripts import CookieRotation, Rotated, Rotation
from app.core.errors import DependencyUnavailable
from app.core.redis import RedisClient

SEEN_EVERY = 60.0  # seconds between last-seen writes: not a write per request

# The clock sessions are created, extended and ended by (tests move it forward).
clock = time.time


class SessionStore:
    """All session state; any Redis failure becomes DEPENDENCY_UNAVAILABLE (fail closed)."""

    # What `principal_fields` reads: a Bearer request's fields, or a cookie request's.
    FIELDS = SessionFields
    COOKIE_FIELDS = CookieSessionFields

    def __init__(
        self,
        redis: RedisClient,
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
        self._rotate = redis.register_script(scripts.ROTATE)
        self._rotate_cookie = redis.register_script(scripts.ROTATE_COOKIE)
        self._update = redis.register_script(scripts.UPDATE_GRANTS)
        self._touch = redis.register_script(scripts.TOUCH)

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
        mapping: dict[FieldT, EncodableT] = {
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
        }
        mapping.update((extra or {}).items())
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
        return decode(sid, raw)

    @overload
    async def principal_fields(
        self, user_id: str, sid: str, fields: type[SessionFields] = ...
    ) -> SessionFields: ...

    @overload
    async def principal_fields(
        self, user_id: str, sid: str, fields: type[CookieSessionFields]
    ) -> CookieSessionFields: ...

    async def principal_fields(
        self, user_id: str, sid: str, fields: Shape = SessionFields
    ) -> Fields:
        """The fields an authenticated request needs, as `fields` (default `SessionFields`):
        from the session cache when it is live, else in one round trip."""
        key = self.session_key(user_id, sid)
        cache = self.cache
        if cache is None or not cache.serves:
            return await self._read(key, fields)
        cached = cache.get(key, fields)
        if cached is not None:
            return cached
        generation = cache.generation
        values = await self._read(key, fields)
        cache.put(key, fields, values, generation)
        return values

    async def _read(self, key: str, fields: Shape) -> Fields:
        try:
            values = fields._make(await self._redis.hmget(key, HASH_FIELDS[fields]))
            seen = values.last_seen_at
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
    ) -> Rotated:
        """Rotate a Bearer session's refresh token to `new_jti` (see `Rotation`)."""
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
            outcome = Rotation(result)
            if outcome.changed:  # gone, or a new snapshot: every instance re-reads
                await self._changed(user_id, sid)
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        return Rotated(outcome, float(deadline or 0))

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
        return as_text(token), self.ends_at(float(created or 0))

    async def rotate_cookie(
        self,
        user_id: str,
        sid: str,
        presented_jti: str,
        new_jti: str,
        new_token: str,
        access_expires_at: float,
        grants: Grants,
    ) -> CookieRotation:
        """Rotate a cookie session's stored refresh token to `new_token` (see `CookieRotation`)."""
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
            outcome = CookieRotation(result)
            if outcome.changed:  # a new access expiry and snapshot, or gone
                await self._changed(user_id, sid)
        except RedisError as exc:
            raise DependencyUnavailable("Session store is unavailable") from exc
        return outcome

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
        return sorted(as_text(m) for m in members)

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
        args: list[str | bytes] = [
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
