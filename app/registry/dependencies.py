"""The loaded service registry as a route dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.registry.live import LiveRegistry
from app.registry.schema import RegistryConfig

STATE_KEY = "registry"  # lifespan state key: the `LiveRegistry` (a plain config in lean apps)


def registry_of(request: Request) -> RegistryConfig:
    """The registry serving now (read once per request: a reload swaps it whole)."""
    held: LiveRegistry | RegistryConfig = request.scope["state"][STATE_KEY]
    return held.current.config if isinstance(held, LiveRegistry) else held


def live_registry_of(request: Request) -> LiveRegistry | None:
    """The live registry with its version, or None in an app that serves a fixed one."""
    held = request.scope["state"].get(STATE_KEY)
    return held if isinstance(held, LiveRegistry) else None


Registry = Annotated[RegistryConfig, Depends(registry_of)]
Live = Annotated[LiveRegistry | None, Depends(live_registry_of)]
