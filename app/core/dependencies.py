"""Typed access to what the lifespan and the request context put in a request's state.

Each getter is the one place its entry is read; routes take the `Annotated` types instead of
reaching into `request.state`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.redis import RedisClient


def settings_of(request: Request) -> Settings:
    return request.state.settings  # type: ignore[no-any-return]


def engine_of(request: Request) -> AsyncEngine:
    return request.state.engine  # type: ignore[no-any-return]


def redis_of(request: Request) -> RedisClient:
    return request.state.redis  # type: ignore[no-any-return]


def request_id_of(request: Request) -> str:
    """The request's id (accepted from `X-Request-ID` or made by the request context)."""
    return request.state.request_id  # type: ignore[no-any-return]


AppSettings = Annotated[Settings, Depends(settings_of)]
AppEngine = Annotated[AsyncEngine, Depends(engine_of)]
AppRedis = Annotated[RedisClient, Depends(redis_of)]
RequestId = Annotated[str, Depends(request_id_of)]
