"""The downstream health checker as a route dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.discovery.checker import HealthChecker

STATE_KEY = "health_checker"  # lifespan state key


def checker_of(request: Request) -> HealthChecker:
    return request.scope["state"][STATE_KEY]  # type: ignore[no-any-return]


def checker_if_running(request: Request) -> HealthChecker | None:
    """The checker, or None in an app whose discovery did not start."""
    return request.scope["state"].get(STATE_KEY)  # type: ignore[no-any-return]


Checker = Annotated[HealthChecker, Depends(checker_of)]
RunningChecker = Annotated[HealthChecker | None, Depends(checker_if_running)]
