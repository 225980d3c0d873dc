"""What authentication answers, declared for the OpenAPI document (`app.core.raises`).

The identity leaf knows no token or cookie: its `current_principal` calls the authenticator
auth puts in the app's state (`app.auth.dependencies.authenticate`), so auth declares on it what
that authenticator can answer.
"""

from __future__ import annotations

from app.auth.errors import (
    AccountDisabled,
    CsrfFailed,
    SessionExpired,
    SessionRevoked,
    TokenExpired,
    TokenInvalid,
    TokenReused,
)
from app.core.errors import DependencyUnavailable, Unauthorized
from app.core.raises import Errors, declare
from app.identity import dependencies as identity

# A Bearer access token: none, expired, bad, or of a session that is gone; the session store
# unreachable.
BEARER: Errors = (Unauthorized, TokenExpired, TokenInvalid, SessionRevoked, DependencyUnavailable)
# The session cookie: bad or gone, and its renewal (due once the access grant ran out) finds the
# session past its lifetime or the account disabled.
COOKIE: Errors = (TokenInvalid, SessionRevoked, SessionExpired, AccountDisabled)
# The refresh token of `POST /auth/refresh`: all of a Bearer token's, and its rotation's.
REFRESH: Errors = (*BEARER, SessionExpired, TokenReused, AccountDisabled)

declare(identity.current_principal, *BEARER, *COOKIE, on_writes=(CsrfFailed,))
