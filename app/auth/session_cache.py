"""A short per-process cache of session checks, invalidated through Redis pub/sub.

Every authenticated request needs a session's principal fields. Reading them from Redis costs
a round trip per request; this cache keeps them for a few seconds and is emptied by the
instance that changes a session (logout, revoke, reuse kill, role change) publishing the
session's key, which every instance's subscriber drops at once.

It serves nothing unless its subscriber is provably current: subscribed, and answering a PING
within the last `LIVE_WINDOW` seconds. A lost or frozen subscriber connection switches it off
and empties it (messages may have been missed); a new subscription empties it again before it
serves. A generation counter makes a fill that raced an invalidation not stick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from app.auth.session_data import Fields, Shape
from app.core.logging import get_logger
from app.core.redis import RedisClient

log = get_logger("studio.sessions.cache")

HEARTBEAT = 0.5  # seconds between PINGs on the subscriber connection
# The cache serves only while the last PONG is at most this old. Invalidations travel on the
# same connection ahead of the PONGs, so this bounds only how long a frozen Redis goes unnoticed;
# it is wide enough that a slow scheduler (measured: Redis answering 1-1.7 s late on a saturated
# host) does not switch the cache off and send every request to a Redis that is slow right then.
LIVE_WINDOW = 3.0
MAX_ENTRIES = 10_000
FLUSH = b"*"  # a message that empties every instance's cache
# Pauses after each failed publish; the last attempt's is unused. A few quick tries: the caller
# (a logout, a revoke) waits for them.
PUBLISH_BACKOFF = (0.02, 0.1, 0.0)

Loader = Callable[[str, Shape], Awaitable[Fields]]
# Told each session key the channel invalidates (FLUSH: every session, also after a
# resubscription, when messages may have been missed), whether the cache serves or not.
Listener = Callable[[str], None]


class SessionCache:
    """Principal fields by session key, valid for `ttl` seconds, while the subscriber lives.

    A session in use is re-read in the background once half its `ttl` has passed (by `loader`,
    set by the session store), so a busy session never expires into a burst of requests that all
    wait on Redis at once; an entry is still never served past its `ttl`.
    """

    def __init__(
        self, redis: RedisClient, channel: str, ttl: float, listener: RedisClient | None = None
    ) -> None:
        self._redis = redis  # publishes
        self._listener = listener or redis  # subscribes: holds a connection for good
        self.channel = channel
        self._ttl = ttl
        # key -> (expires, refresh after, fields, values)
        self._entries: dict[str, tuple[float, float, Shape, Fields]] = {}
        self._live_until = 0.0
        self.generation = 0
        self.loader: Loader | None = None
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._listeners: list[Listener] = []
        # Lookups answered from here and not, read by /metrics (plain ints: no cost per request).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def serves(self) -> bool:
        """False with `SESSION_CACHE_SECONDS=0`: nothing is kept, but invalidations still
        travel, for the listeners (open WebSockets close when their session ends)."""
        return self._ttl > 0

    @property
    def live(self) -> bool:
        return time.monotonic() < self._live_until

    def get(self, key: str, fields: Shape) -> Fields | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires, refresh_after, cached_fields, values = entry
        now = time.monotonic()
        if cached_fields != fields or now >= expires or now >= self._live_until:
            self.misses += 1
            return None
        self.hits += 1
        if now >= refresh_after and key not in self._refreshing and self.loader is not None:
            self._refreshing[key] = asyncio.create_task(self._refresh(key, fields, self.loader))
        return values

    async def _refresh(self, key: str, fields: Shape, loader: Loader) -> None:
        generation = self.generation
        try:
            values = await loader(key, fields)
        except Exception:  # Redis slow or down: the entry just expires; requests then fail closed
            return
        finally:
            self._refreshing.pop(key, None)
        self.put(key, fields, values, generation)

    def put(self, key: str, fields: Shape, values: Fields, generation: int) -> None:
        """Store a fill read while `generation` was current; dropped if anything was invalidated
        since (the read may predate the change)."""
        if generation != self.generation or not self.live:
            return
        if len(self._entries) >= MAX_ENTRIES and key not in self._entries:
            self._entries.pop(next(iter(self._entries)))
        now = time.monotonic()
        self._entries[key] = (now + self._ttl, now + self._ttl / 2, fields, values)

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` with every key invalidated here or through the channel."""
        self._listeners.append(listener)

    def _tell(self, key: str) -> None:
        for listener in self._listeners:
            try:
                listener(key)
            except Exception as exc:  # a listener's bug must not stop invalidations
                log.error("session invalidation listener failed", error=type(exc).__name__)

    def invalidate(self, key: bytes | str) -> None:
        """Forget one session here (FLUSH: all of them)."""
        self.generation += 1
        if key in (FLUSH, FLUSH.decode()):
            self._entries.clear()
        else:
            self._entries.pop(key if isinstance(key, str) else key.decode(), None)
        if self._listeners:
            self._tell(key if isinstance(key, str) else key.decode("utf-8", "replace"))

    async def publish(self, key: str) -> None:
        """Forget a session here and tell every other instance to (the caller has changed it in
        Redis already, so a fill anywhere after this reads the new state).

        The change is done whatever happens here: a failed publish is retried a few times, then
        logged, never raised. Another instance then serves the old entry for at most its `ttl`
        (SESSION_CACHE_SECONDS, at most 5 s)."""
        self.invalidate(key)
        for attempt, pause in enumerate(PUBLISH_BACKOFF):
            try:
                await self._redis.publish(self.channel, key)
                return
            except (RedisError, OSError) as exc:  # a reset, a failover, a timeout
                if attempt == len(PUBLISH_BACKOFF) - 1:
                    log.error(
                        "session invalidation not published",
                        key=key,
                        error=type(exc).__name__,
                        stale_for_at_most=self._ttl,
                    )
                    return
            await asyncio.sleep(pause)

    def _switch_off(self) -> None:
        self._live_until = 0.0
        self.generation += 1
        self._entries.clear()

    # The subscriber: one task per process, started and stopped by the lifespan.

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._subscribe_forever(), name="session-cache")

    async def stop(self) -> None:
        self._stopping.set()
        self._switch_off()
        for refresh in list(self._refreshing.values()):
            refresh.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)
            self._task = None

    async def _subscribe_forever(self) -> None:
        backoff = HEARTBEAT
        while not self._stopping.is_set():
            pubsub = self._listener.pubsub()
            connection = None
            try:
                await self._listener.initialize()  # a cluster client learns its slots here
                await pubsub.subscribe(self.channel)
                # redis-py reconnects and resubscribes by itself: off from that moment until
                # the new subscription is confirmed.
                connection = pubsub.connection
                if connection is None:  # subscribe() has just connected it
                    raise RuntimeError("subscribed without a connection")
                connection.register_connect_callback(self._on_reconnect)
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down, frozen or failing over: serve nothing
                if self._live_until:
                    log.warning("session cache off: subscriber lost", error=type(exc).__name__)
            finally:
                self._switch_off()
                if connection is not None:
                    connection.deregister_connect_callback(self._on_reconnect)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), HEARTBEAT)  # type: ignore[no-untyped-call]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, 5.0)

    def _on_reconnect(self, _connection: AbstractConnection) -> None:
        self._switch_off()

    async def _listen(self, pubsub: PubSub) -> None:
        subscribed = False
        next_ping = 0.0
        last_pong = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_ping:
                if now - last_pong > LIVE_WINDOW * 2:
                    raise TimeoutError("no PONG from Redis")  # reconnect from scratch
                await asyncio.wait_for(pubsub.ping(), HEARTBEAT)
                next_ping = now + HEARTBEAT
            message = await pubsub.get_message(timeout=HEARTBEAT)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                self.invalidate(message["data"])
            elif kind == "subscribe":
                # A first or renewed subscription (redis-py resubscribes after a reconnect):
                # whatever was published in between is lost, so start empty.
                self._switch_off()
                if self._listeners:  # sockets opened meanwhile are re-checked
                    self._tell(FLUSH.decode())
                subscribed = True
                last_pong = time.monotonic()
            elif kind == "pong":
                last_pong = time.monotonic()
                if subscribed and not self._stopping.is_set():
                    if not self._live_until:
                        log.info("session cache on", channel=self.channel)
                    self._live_until = last_pong + LIVE_WINDOW
