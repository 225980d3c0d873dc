"""Errors of the downstream credential providers."""

from __future__ import annotations

from app.core.errors import StudioError


class CredentialsUnavailable(StudioError):
    status_code = 503
    code = "CREDENTIALS_UNAVAILABLE"
    message = "Upstream credentials are unavailable"
