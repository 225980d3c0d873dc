"""A session's permission snapshot never goes back to older grants: ROTATE and ROTATE_COOKIE
write the grants they carry only when their version is not older than the stored one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.auth.session_data import Grants
from app.auth.session_scripts import CookieRotation, Rotation
from app.auth.sessions import SessionStore, clock
from tests.conftest import RUN_ID

pytestmark = pytest.mark.services


@pytest.fixture
async def store(redis_url: str | None) -> AsyncIterator[SessionStore]:
    if redis_url is None:
        pytest.skip("needs the real Redis (reachable whenever STUDIO_REQUIRE_SERVICES=1)")
    client = Redis.from_url(redis_url)
    try:
        # Under the run's prefix, so the session fixture removes the keys afterwards.
        yield SessionStore(client, f"studio-test-{RUN_ID}:gv-{uuid.uuid4().hex[:8]}:", 3600)
    finally:
        await client.aclose()


NEW = Grants(["admin"], ["*"], 7)
OLD = Grants(["viewer"], ["dashboard:read"], 6)


async def _session(store: SessionStore, **extra: str) -> tuple[str, str]:
    uid = uuid.uuid4().hex
    sid = await store.create(
        user_id=uid,
        email="user@example.com",
        grants=NEW,
        refresh_jti="jti-1",
        client_ip=None,
        user_agent=None,
        started_at=clock(),
        extra=extra or None,
    )
    return uid, sid


async def test_a_rotation_with_older_grants_keeps_the_newer_snapshot(store: SessionStore) -> None:
    uid, sid = await _session(store)
    rotated = await store.rotate(uid, sid, "jti-1", "jti-2", OLD)
    assert rotated.outcome is Rotation.ROTATED
    data = await store.load(uid, sid)
    assert data is not None
    assert (data.roles, data.permissions, data.refresh_jti) == (
        ("admin",),
        frozenset({"*"}),
        "jti-2",
    )

    newer = Grants(["viewer"], ["dashboard:read"], 8)
    assert (await store.rotate(uid, sid, "jti-2", "jti-3", newer)).outcome is Rotation.ROTATED
    data = await store.load(uid, sid)
    assert data is not None
    assert (data.roles, data.permissions) == (("viewer",), frozenset({"dashboard:read"}))


async def test_a_cookie_renewal_with_older_grants_keeps_the_newer_snapshot(
    store: SessionStore,
) -> None:
    uid, sid = await _session(store, mode="cookie", rtok="stored-token")
    outcome = await store.rotate_cookie(uid, sid, "jti-1", "jti-2", "token-2", clock() + 60, OLD)
    assert outcome is CookieRotation.ROTATED
    data = await store.load(uid, sid)
    assert data is not None
    assert (data.roles, data.permissions, data.refresh_jti) == (
        ("admin",),
        frozenset({"*"}),
        "jti-2",
    )
