"""Every domain router, mounted under its prefix."""

from __future__ import annotations

from fastapi import FastAPI

from app.core.config import Settings
from app.health.router import live_router, ready_router


def include(app: FastAPI, settings: Settings) -> None:
    prefix = settings.api_prefix
    app.include_router(live_router)
    app.include_router(ready_router, prefix=prefix)
