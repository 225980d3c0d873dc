"""Domain start-up hooks run by the lifespan, in order (each an async context manager)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

Hook = Callable[[FastAPI, dict[str, Any]], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def auth_components(app: FastAPI, state: dict[str, Any]) -> AsyncIterator[None]:
    from app.auth.dependencies import build_auth_state

    state.update(build_auth_state(state["settings"], state["redis"]))
    yield


HOOKS: list[Hook] = []
