"""The loaded service registry as a route dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.registry.schema import RegistryConfig


def registry_of(request: Request) -> RegistryConfig:
    return request.state.registry  # type: ignore[no-any-return]


Registry = Annotated[RegistryConfig, Depends(registry_of)]
