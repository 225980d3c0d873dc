"""The downstream health checker as a route dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.discovery.checker import HealthChecker

STATE_KEY = "health_checker"  # lifespan state key


def checker_of(request: Request) -> HealthChecker:
    return request.scope["state"][STATE_KEY]  # type: ignore[no-any-return]


Checker = Annotated[HealthChecker, Depends(checker_of)]
