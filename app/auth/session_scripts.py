"""The Lua scripts that change a session in one step, and what each one answers."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class Rotation(IntEnum):
    """What ROTATE did to a Bearer session's refresh token."""

    ROTATED = 1  # the new jti replaces it; the snapshot is the new grants unless a newer is stored
    GONE = 0  # no such session: logged out, revoked or expired
    REUSED = -1  # not the current jti: a rotated token came back, so the session was revoked
    COOKIE_SESSION = -2  # a cookie session's token, which never leaves Studio: refused as is
    EXPIRED = -3  # past its max lifetime: deleted

    @property
    def changed(self) -> bool:
        """The session is gone or has a new snapshot: every instance's cache must re-read it."""
        return self in (Rotation.ROTATED, Rotation.REUSED, Rotation.EXPIRED)


class CookieRotation(IntEnum):
    """What ROTATE_COOKIE did to the refresh token a cookie session keeps server-side."""

    ROTATED = 1
    # A concurrent request rotated first: the token never left Studio, so a race, not reuse.
    RACED = 2
    GONE = 0
    EXPIRED = -3  # past its max lifetime: deleted

    @property
    def changed(self) -> bool:
        """The session is gone or has a new access expiry and snapshot: caches must re-read it."""
        return self in (CookieRotation.ROTATED, CookieRotation.EXPIRED)


class Rotated(NamedTuple):
    """ROTATE's answer: the outcome and, when rotated, the session's end (epoch seconds)."""

    outcome: Rotation
    ends_at: float


# Every script that extends a session first checks its absolute end: `created` (the login) plus
# the max lifetime (ARGV). Past it the session is deleted (SESSION_EXPIRED); before it the key's
# TTL never reaches beyond it. A permission snapshot (roles, perms, gv) is written only when its
# grants version is not older than the stored one: a slow writer never undoes a newer change. A
# session stored before versions existed has none, and counts as version -1.

# KEYS: session hash, user's session set. ARGV: presented jti, new jti, ttl ms, now, session id,
# max lifetime s, roles, perms, grants version. Answers {Rotation, deadline}: a missing session
# is GONE; a jti that is not the current one is REUSED, which kills the session; a cookie-mode
# session's refresh token presented as Bearer can only come from a leak of the session store,
# so it is refused without touching the session.
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
# ttl ms, now, max lifetime s, roles, perms, grants version, session id. Answers a CookieRotation.
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
# Only touches a session that still exists; the answer (0 gone, 1 present) is not used.
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
