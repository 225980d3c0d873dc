"""Everything the proxy needs per service, built at start-up (and by a registry reload) and
closed at shutdown.

The services serve from one `RegistrySnapshot`, which a reload replaces whole: a request takes
its service from the snapshot once, when it is matched, and finishes on that service's pool
whatever reloads happen meanwhile. A service a reload changed or removed is retired: its pool
closes when its last request ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.config import Settings
from app.core.logging import get_logger
from app.credentials.base import BasicCredentials, CredentialProvider
from app.credentials.errors import CredentialsUnavailable
from app.proxy.aiohttp_client import AiohttpUpstreamClient
from app.proxy.breaker import BreakerState, CircuitBreaker
from app.proxy.client import ClientFactory, UpstreamClient
from app.proxy.routing import CompiledRoutes
from app.ratelimit.errors import RateLimited
from app.registry.schema import RegistryConfig, ServiceConfig

log = get_logger("studio.proxy")

STATE_KEY = "proxy"  # lifespan state key (request.state.proxy)
# JSON bodies up to this size are read whole to be put in the envelope; larger ones pass raw.
JSON_ENVELOPE_CAP = 8 * 1024 * 1024


def default_client(name: str, config: ServiceConfig) -> UpstreamClient:
    """Each service's client: aiohttp, chosen by measurement (BENCHMARKS.md)."""
    return AiohttpUpstreamClient.for_service(config, name)


@dataclass(eq=False, slots=True)
class ServiceRuntime:
    """One downstream: its pool, breaker, routes, credentials and precomputed byte strings."""

    name: str
    config: ServiceConfig
    client: UpstreamClient
    breaker: CircuitBreaker
    routes: CompiledRoutes
    provider: CredentialProvider | None
    raw_prefix: bytes  # b"/api/v1/nexus/": what the raw client path must start with
    base_path: bytes  # the base URL's path without trailing `/`, e.g. b"/orchestrator"
    host_header: bytes
    location: tuple[bytes, bytes]  # (internal base URL, public prefix) for redirects
    max_body_bytes: int
    write_timeout: float  # seconds the client may leave between two chunks of its body
    _auth: tuple[BasicCredentials, bytes] | None = None
    inflight: int = 0  # calls on this runtime's pool now (requests, streams, probes)
    retired: bool = False  # a reload replaced or removed it: close the pool once drained
    closed: asyncio.Task[None] | None = None

    def enter(self) -> None:
        """A call starts on this runtime."""
        self.inflight += 1

    def leave(self) -> None:
        """A call on this runtime ended, however it ended."""
        self.inflight -= 1
        if self.retired and self.inflight <= 0:
            self._close_soon()

    def retire(self) -> None:
        """No new call comes here; the pool closes when the calls in flight have ended."""
        self.retired = True
        if self.inflight <= 0:
            self._close_soon()

    def _close_soon(self) -> None:
        if self.closed is None:
            self.closed = asyncio.get_running_loop().create_task(
                self.close_pool(), name=f"close-pool-{self.name}"
            )

    async def close_pool(self) -> None:
        """Close the pool (a retired runtime, once drained)."""
        try:
            await self.client.aclose()
        except Exception as exc:  # a pool that fails to close is logged, never raised
            log.warning("closing upstream pool failed", service=self.name, error=repr(exc))
        log.info("retired upstream pool closed", service=self.name)

    async def authorization(
        self, refresh: bool = False
    ) -> tuple[BasicCredentials | None, bytes | None]:
        """The service credentials and their header value; `CredentialsUnavailable` on failure."""
        if self.provider is None:
            return None, None
        try:
            creds = await (self.provider.refresh() if refresh else self.provider.get())
        except Exception as exc:
            log.warning("credentials unavailable", service=self.name, error=type(exc).__name__)
            raise CredentialsUnavailable(details={"service": self.name}) from None
        if creds is None:
            return None, None
        cached = self._auth
        if cached is None or cached[0] != creds:
            # base64 once per credential version, not once per request
            cached = (creds, creds.header.encode("latin-1"))
            self._auth = cached
        return creds, cached[1]


UPLOAD_RETRY_AFTER = 1  # seconds


class UploadSlots:
    """Streamed uploads in flight per user in this process, capped so that one account
    cannot hold every pooled connection of a service with slow or stalled uploads."""

    __slots__ = ("_active", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active: dict[str, int] = {}

    def acquire(self, user: str) -> None:
        """Count one more upload of `user`, or raise `RateLimited` when at the cap."""
        active = self._active.get(user, 0)
        if active >= self.limit:
            raise RateLimited(
                "Too many uploads in progress",
                details={"max_uploads": self.limit, "retry_after": UPLOAD_RETRY_AFTER},
                headers={
                    "Retry-After": str(UPLOAD_RETRY_AFTER),
                    "RateLimit-Limit": str(self.limit),
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(UPLOAD_RETRY_AFTER),
                },
            )
        self._active[user] = active + 1

    def release(self, user: str) -> None:
        """One upload of `user` ended, however it ended."""
        active = self._active.get(user, 0) - 1
        if active > 0:
            self._active[user] = active
        else:
            self._active.pop(user, None)

    def active(self, user: str) -> int:
        """Uploads of `user` in flight."""
        return self._active.get(user, 0)


class RegistrySnapshot(dict[str, ServiceRuntime]):
    """The services of one registry version, by name. Built whole and never changed after:
    a reload builds another and swaps it in (a dict, so a request's lookup is dict.get)."""

    __slots__ = ("version",)

    def __init__(self, services: Mapping[str, ServiceRuntime], version: str | None = None):
        super().__init__(services)
        self.version = version  # the registry's content hash, when it came from files


@dataclass(frozen=True, slots=True)
class SwapReport:
    """What a reload changed: services added, rebuilt (a changed block) and removed."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(eq=False)
class ProxyState:
    """The proxy's start-up product; lives in the lifespan state under `proxy`."""

    services: RegistrySnapshot  # what serves now: read once per request, swapped whole
    api_prefix: str
    json_cap: int = JSON_ENVELOPE_CAP
    quotas_enabled: bool = True
    uploads: UploadSlots = field(default_factory=lambda: UploadSlots(2))
    closed: bool = field(default=False, init=False)
    retired: list[ServiceRuntime] = field(default_factory=list, init=False)

    def breaker_states(self) -> dict[str, BreakerState]:
        """Each service's circuit state, for discovery and health."""
        return {name: svc.breaker.state for name, svc in self.services.items()}

    def swap(self, snapshot: RegistrySnapshot) -> SwapReport:
        """Serve `snapshot` from now on; retire every runtime it no longer holds.

        One attribute assignment, so a request sees the old snapshot or the new one, never a
        mix. A runtime carried over unchanged (same object) keeps its pool, breaker and cached
        credentials."""
        old = self.services
        new = snapshot
        self.services = snapshot
        self.retired = [r for r in self.retired if r.closed is None or not r.closed.done()]
        for name, runtime in old.items():
            if new.get(name) is not runtime:
                runtime.retire()
                self.retired.append(runtime)
        return SwapReport(
            added=tuple(n for n in new if n not in old),
            changed=tuple(n for n in new if n in old and new[n] is not old[n]),
            removed=tuple(n for n in old if n not in new),
        )

    async def aclose(self) -> None:
        """Close every service's pool, and wait for retired ones still closing."""
        if self.closed:
            return
        self.closed = True
        for svc in self.services.values():
            try:
                await svc.client.aclose()
            except Exception as exc:  # one bad pool must not keep the others open
                log.warning("closing upstream pool failed", service=svc.name, error=repr(exc))
        # Retired pools still draining: the server has ended every request by now.
        for svc in self.retired:
            if svc.closed is None:
                svc.closed = asyncio.get_running_loop().create_task(svc.close_pool())
        pending = [svc.closed for svc in self.retired if svc.closed is not None]
        if pending:
            await asyncio.wait(pending, timeout=5)


def _host_header(config: ServiceConfig) -> bytes:
    url = config.base_url
    host = url.host or ""
    default = 443 if url.scheme == "https" else 80
    return (host if url.port in (None, default) else f"{host}:{url.port}").encode("ascii")


def build_service(
    name: str,
    config: ServiceConfig,
    provider: CredentialProvider | None,
    settings: Settings,
    client_factory: ClientFactory = default_client,
    clock: Callable[[], float] | None = None,
) -> ServiceRuntime:
    """Compile one service's runtime."""
    base_path = (config.base_url.path or "").rstrip("/").encode()
    url = config.base_url
    origin = f"{url.scheme}://{_host_header(config).decode()}".encode()
    public = f"{settings.api_prefix}/{name}".encode()
    breaker_args: dict[str, Any] = {} if clock is None else {"clock": clock}
    return ServiceRuntime(
        name=name,
        config=config,
        client=client_factory(name, config),
        breaker=CircuitBreaker(
            name,
            config.circuit_breaker.failure_threshold,
            config.circuit_breaker.open_seconds,
            **breaker_args,
        ),
        routes=CompiledRoutes(name, config),
        provider=provider,
        raw_prefix=public + b"/",
        base_path=base_path,
        host_header=_host_header(config),
        location=(origin + base_path, public),
        max_body_bytes=config.max_body_bytes,
        write_timeout=config.timeouts.write,
    )


def build_proxy_state(
    registry: RegistryConfig,
    providers: Mapping[str, CredentialProvider],
    settings: Settings,
    *,
    client_factory: ClientFactory = default_client,
    json_cap: int = JSON_ENVELOPE_CAP,
    clock: Callable[[], float] | None = None,
    version: str | None = None,
) -> ProxyState:
    """Clients, breakers, compiled routes and providers for every registry service."""
    services = {
        name: build_service(name, config, providers.get(name), settings, client_factory, clock)
        for name, config in registry.services.items()
    }
    return ProxyState(
        services=RegistrySnapshot(services, version),
        api_prefix=settings.api_prefix,
        json_cap=json_cap,
        quotas_enabled=settings.rate_limit_enabled,
        uploads=UploadSlots(settings.proxy_max_uploads_per_user),
    )


def next_snapshot(
    current: RegistrySnapshot,
    registry: RegistryConfig,
    providers: Mapping[str, CredentialProvider],
    settings: Settings,
    *,
    version: str | None = None,
    client_factory: ClientFactory = default_client,
) -> RegistrySnapshot:
    """The snapshot for `registry`: a service whose block and provider are unchanged keeps
    its runtime (the same object); any other gets a new one (a fresh pool and breaker)."""
    services: dict[str, ServiceRuntime] = {}
    try:
        for name, config in registry.services.items():
            provider = providers.get(name)
            kept = current.get(name)
            if kept is not None and kept.config == config and kept.provider is provider:
                services[name] = kept
            else:
                services[name] = build_service(name, config, provider, settings, client_factory)
    except BaseException:
        for name, runtime in services.items():
            if current.get(name) is not runtime:
                runtime.retire()  # never served: closes at once
        raise
    return RegistrySnapshot(services, version)
