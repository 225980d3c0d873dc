"""What every socket of a process shares, built once by the lifespan, and each service's
`Target`: the few lines that put the relay in front of the registry's services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from app.auth.cookies import CookiePolicy
from app.auth.sessions import SessionStore
from app.core.redis import RedisClient
from app.proxy.state import ServiceRuntime
from app.websocket.downstream import Target
from app.websocket.hub import SocketHub
from app.websocket.quota import SocketQuota
from app.websocket.upgrade import Authenticator

STATE_KEY = "websockets"  # lifespan state key


@dataclass(frozen=True, slots=True)
class Front:
    """The process's open sockets, its WebSocket client session and the identity checks."""

    hub: SocketHub
    session: aiohttp.ClientSession
    identify: Authenticator
    cookie_policy: CookiePolicy  # the cookie's name, and the origins a cookie upgrade may come from
    ping_interval: float = 20.0  # seconds between pings to the service


def build_front(
    *,
    store: SessionStore,
    redis: RedisClient,
    identify: Authenticator,
    cookie_policy: CookiePolicy,
    key_prefix: str,
    per_user_cap: int,
    check_interval: float = 20.0,
    ping_interval: float = 20.0,
) -> Front:
    """The front; its hub listens to the session cache's invalidations."""
    # A lease outlives two missed renewals: a live socket never loses its slot to a slow pass.
    quota = SocketQuota(redis, key_prefix, per_user_cap, lease=check_interval * 3)
    hub = SocketHub(store, quota, check_interval)
    if store.cache is not None:
        store.cache.add_listener(hub.invalidated)
    # Its own session: a socket holds its connection for its whole life, which must not take
    # a slot of the service's HTTP pool.
    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, trust_env=False
    )
    return Front(
        hub=hub,
        session=session,
        identify=identify,
        cookie_policy=cookie_policy,
        ping_interval=ping_interval,
    )


@asynccontextmanager
async def running(front: Front) -> AsyncIterator[Front]:
    """The hub's periodic pass while serving; every socket closed (1001) on the way out."""
    front.hub.start()
    try:
        yield front
    finally:
        await front.hub.stop()
        await front.session.close()


def target_for(
    service: ServiceRuntime,
    *,
    max_message_bytes: int,
    idle_timeout: float,
    ping_interval: float,
) -> Target:
    """The WebSocket side of a registry service: its base URL as ws(s), its credentials."""
    url = service.config.base_url
    scheme = "wss" if url.scheme == "https" else "ws"
    base = f"{scheme}://{service.host_header.decode('ascii')}{service.base_path.decode()}"

    async def credentials() -> bytes | None:
        return (await service.authorization())[1]

    return Target(
        service=service.name,
        url=base,
        host_header=service.host_header,
        breaker=service.breaker,
        credentials=credentials,
        max_message_bytes=max_message_bytes,
        idle_timeout=idle_timeout,
        connect_timeout=service.config.timeouts.connect,
        ping_interval=ping_interval,
    )
