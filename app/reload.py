"""Reloading the service registry in a running worker (`SIGHUP`, the file watch): validate the
files completely, then swap everything that depends on them in one step."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from app.core.logging import get_logger
from app.credentials.factory import build_providers
from app.observability.metrics import observe_registry_reload
from app.proxy.state import default_client, next_snapshot
from app.registry.live import ReloadAttempt, ReloadOutcome, fingerprint, load_versioned
from app.registry.loader import RegistryError
from app.state import StudioState

log = get_logger("studio.registry.reload")


class RegistryReloader:
    """Reloads the service registry in this process: validate everything, then swap at once.

    A broken file changes nothing: the registry serving keeps serving, the error is logged
    (file, key, problem; never a substituted value) and counted. A valid one is swapped in
    one synchronous step (proxy snapshot, credentials, live registry, listeners), so no
    request sees half of it. One reload runs at a time.
    """

    def __init__(self, state: StudioState) -> None:
        self.state = state
        self._lock = asyncio.Lock()
        self._seen: str | None = state.registry.current.version  # the files' last read
        self._tasks: set[asyncio.Task[Any]] = set()

    async def reload(self, trigger: str) -> ReloadOutcome:
        """Read the files now and serve them if they are valid; the outcome."""
        async with self._lock:
            outcome = await self._reload(trigger)
        observe_registry_reload(outcome.value)
        return outcome

    def trigger(self, reason: str) -> None:
        """Reload in the background (from a signal handler)."""
        task = asyncio.get_running_loop().create_task(self.reload(reason), name="registry-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def watch(self, interval: float) -> None:
        """From now on, reload whenever the files' content differs from what was last read."""
        task = asyncio.get_running_loop().create_task(self._watch(interval), name="registry-watch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Cancel the watch and any reload in flight (a half-done reload changed nothing)."""
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def _watch(self, interval: float) -> None:
        settings = self.state.settings
        while True:
            await asyncio.sleep(interval)
            seen = await asyncio.to_thread(fingerprint, settings)
            if seen is not None and seen != self._seen:
                await self.reload("watch")

    async def _reload(self, trigger: str) -> ReloadOutcome:
        state = self.state
        live = state.registry
        proxy = state.proxy
        assert proxy is not None and state.credential_providers is not None
        try:
            loaded = await asyncio.to_thread(load_versioned, state.settings)
        except RegistryError as exc:
            self._seen = await asyncio.to_thread(fingerprint, state.settings)
            return self._rejected(trigger, str(exc))
        self._seen = loaded.version
        if loaded.version == live.current.version:
            live.last_attempt = ReloadAttempt(
                ReloadOutcome.UNCHANGED, loaded.loaded_at, loaded.version
            )
            log.info("service registry unchanged", trigger=trigger, version=loaded.version)
            return ReloadOutcome.UNCHANGED
        try:
            providers = build_providers(
                loaded.config, state.settings,
                previous=(live.current.config, state.credential_providers),
            )  # fmt: skip
            snapshot = next_snapshot(
                proxy.services, loaded.config, providers, state.settings,
                version=loaded.version, client_factory=state.client_factory or default_client,
            )  # fmt: skip
        except Exception as exc:  # a provider or pool that cannot be built: the type only
            return self._rejected(trigger, f"{loaded.files[0]}: services: {type(exc).__name__}")
        # The swap: no await from here to the end, so every request sees one registry.
        report = proxy.swap(snapshot)
        state.credential_providers = providers
        live.current = loaded
        live.last_attempt = ReloadAttempt(ReloadOutcome.APPLIED, loaded.loaded_at, loaded.version)
        if state.health_checker is not None:
            state.health_checker.follow(report.changed, report.removed)
        for listener in state.registry_listeners:
            listener(loaded)
        log.info(
            "service registry reloaded",
            trigger=trigger,
            version=loaded.version,
            added=list(report.added),
            changed=list(report.changed),
            removed=list(report.removed),
        )
        return ReloadOutcome.APPLIED

    def _rejected(self, trigger: str, error: str) -> ReloadOutcome:
        live = self.state.registry
        live.last_attempt = ReloadAttempt(
            ReloadOutcome.REJECTED, datetime.now(UTC), self._seen, error
        )
        log.error(
            "service registry reload rejected; the loaded registry keeps serving",
            trigger=trigger,
            version=live.current.version,
            error=error,
        )
        return ReloadOutcome.REJECTED


@asynccontextmanager
async def registry_reload(state: StudioState) -> AsyncIterator[None]:
    """`SIGHUP` reloads the registry (every worker gets it: `studio serve`'s supervisor
    forwards it); with `SERVICE_CONFIG_RELOAD_INTERVAL`, a change of the files does too."""
    reloader = RegistryReloader(state)
    state.reload = reloader.reload
    loop = asyncio.get_running_loop()
    hup = getattr(signal, "SIGHUP", None)
    listening = False
    if hup is not None:
        try:
            loop.add_signal_handler(hup, reloader.trigger, "signal")
            listening = True
        except (RuntimeError, ValueError):  # not the main thread (an embedded server)
            log.info("registry reload on SIGHUP unavailable in this thread")
    interval = state.settings.service_config_reload_interval
    if interval is not None:
        reloader.watch(interval)
    try:
        yield
    finally:
        if listening and hup is not None:
            loop.remove_signal_handler(hup)
        state.reload = None
        await reloader.stop()
