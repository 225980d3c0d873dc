"""Errors of the rate limiter."""

from __future__ import annotations

from app.core.errors import StudioError


class RateLimited(StudioError):
    status_code = 429
    code = "RATE_LIMITED"
    message = "Too many requests"
