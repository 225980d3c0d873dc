"""Cookie session mode (BFF): the browser holds an opaque cookie, Studio keeps the tokens.

Following the BFF pattern of the IETF draft "OAuth 2.0 for Browser-Based Applications":

- `studio_session` (`__Host-studio_session` outside dev; HttpOnly, SameSite=Lax, Path=/,
  Secure outside dev) is `<user id>.<session id>.<secret>`: it names the Redis session and
  proves possession with 256 random bits, of which the session stores only the SHA-256. No token
  ever reaches the browser: the refresh token lives in the session hash (`rtok`), next to the
  expiry of the current access grant (`aexp`).
- `studio_csrf` (same attributes, not HttpOnly) is the session's CSRF token for the
  double-submit check; it is also returned by login and by `GET {prefix}/auth/csrf`, because a
  front-end on another host cannot read a cookie of Studio's host.
- A state-changing request (anything but GET, HEAD, OPTIONS) authenticated by the cookie needs
  `X-CSRF-Token` equal to the CSRF cookie and to the session's token, and an `Origin` (or, when
  the browser sent none, a `Referer`) that is in CORS_ALLOW_ORIGINS or is Studio's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from app.auth.errors import CsrfFailed
from app.core.config import Settings
from app.identity import dependencies as identity

SESSION_COOKIE = identity.SESSION_COOKIE  # documented by the identity leaf
CSRF_COOKIE = "studio_csrf"
HOST_PREFIX = "__Host-"  # Secure, Path=/ and no Domain: a sibling host cannot plant it
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
MAX_COOKIE_CHARS = 256

# The clock the access grant is measured by (tests move it forward).
clock = time.time


@dataclass(frozen=True, slots=True)
class CookieGrant:
    """What a cookie-mode login creates: the cookie's secret and the session's CSRF token."""

    secret: str
    csrf: str

    @classmethod
    def new(cls) -> CookieGrant:
        return cls(secret=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32))

    @property
    def secret_hash(self) -> str:
        return secret_hash(self.secret)

    def cookie_value(self, user_id: str, session_id: str) -> str:
        return f"{user_id}.{session_id}.{self.secret}"


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """A parsed session cookie (not yet checked against the session)."""

    user_id: str
    session_id: str
    secret: str


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(value: str) -> SessionCookie | None:
    """The parts of a well-formed session cookie value, or None."""
    if len(value) > MAX_COOKIE_CHARS:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    return SessionCookie(*parts)


def secret_matches(cookie: SessionCookie, stored_hash: bytes | None) -> bool:
    if not stored_hash:
        return False
    return hmac.compare_digest(secret_hash(cookie.secret).encode(), stored_hash)


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    """Names and attributes of the two cookies, and the origins allowed to use them."""

    session_name: str
    csrf_name: str
    secure: bool
    max_age: int
    allowed_origins: frozenset[str]
    trust_forwarded: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> CookiePolicy:
        prefix = "" if settings.is_dev else HOST_PREFIX
        return cls(
            session_name=prefix + SESSION_COOKIE,
            csrf_name=prefix + CSRF_COOKIE,
            secure=not settings.is_dev,
            # The cookie dies with its session, counted from login: an absolute limit for a
            # browser session, however often Studio rotates behind it.
            max_age=min(
                settings.jwt_refresh_token_expire_seconds, settings.session_max_lifetime_seconds
            ),
            # `*` (dev only) lets any origin read responses; it never vouches for a CSRF check.
            allowed_origins=frozenset(
                o.rstrip("/").lower() for o in settings.cors_allow_origins if o != "*"
            ),
            trust_forwarded=bool(settings.trusted_proxies),
        )

    def _cookie(self, name: str, value: str, max_age: int, http_only: bool) -> str:
        attrs = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "SameSite=Lax"]
        if http_only:
            attrs.append("HttpOnly")
        if self.secure:
            attrs.append("Secure")
        return "; ".join(attrs)

    def set_cookies(self, session_value: str, csrf: str) -> list[str]:
        """`Set-Cookie` values that start a cookie session."""
        return [
            self._cookie(self.session_name, session_value, self.max_age, http_only=True),
            self._cookie(self.csrf_name, csrf, self.max_age, http_only=False),
        ]

    def csrf_cookie(self, csrf: str, max_age: int | None = None) -> str:
        """The CSRF cookie again, for at most `max_age` seconds (what is left of its session)."""
        age = self.max_age if max_age is None else max(0, min(max_age, self.max_age))
        return self._cookie(self.csrf_name, csrf, age, http_only=False)

    def clear_cookies(self) -> list[str]:
        """`Set-Cookie` values that remove both cookies."""
        return [
            self._cookie(self.session_name, "", 0, http_only=True),
            self._cookie(self.csrf_name, "", 0, http_only=False),
        ]

    def session_cookie(self, request: Request) -> SessionCookie | None:
        """The request's session cookie, parsed; None when absent."""
        value = request.cookies.get(self.session_name)
        return parse(value) if value else None

    def has_session_cookie(self, request: Request) -> bool:
        return self.session_name in request.cookies

    # CSRF

    def check_origin(self, request: Request, *, required: bool) -> None:
        """CSRF_FAILED unless the request comes from an allowed origin (or, when not
        `required`, from a client that names none, such as a script)."""
        origin = request.headers.get("origin") or _origin_of(request.headers.get("referer"))
        if origin is None:
            if required:
                raise CsrfFailed("Origin header required", details={"reason": "origin_missing"})
            return
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins or origin == self.own_origin(request):
            return
        raise CsrfFailed("Origin not allowed", details={"reason": "origin_not_allowed"})

    def check_double_submit(self, request: Request) -> None:
        """CSRF_FAILED unless `X-CSRF-Token` is set and equals the CSRF cookie (no Redis)."""
        header = request.headers.get(CSRF_HEADER, "")
        cookie = request.cookies.get(self.csrf_name, "")
        if not (header and hmac.compare_digest(header.encode(), cookie.encode())):
            raise CsrfFailed("CSRF token missing or wrong", details={"reason": "csrf_token"})

    def check_bound(self, request: Request, stored: bytes | None) -> None:
        """CSRF_FAILED unless `X-CSRF-Token` equals the session's token `stored`: a CSRF
        cookie planted beside a matching header does not pass."""
        header = request.headers.get(CSRF_HEADER, "")
        if not (header and stored and hmac.compare_digest(header.encode(), stored)):
            raise CsrfFailed("CSRF token missing or wrong", details={"reason": "csrf_token"})

    def own_origin(self, request: Request) -> str:
        """`scheme://host[:port]` this request was addressed to (as the client saw it)."""
        scheme = request.url.scheme
        host = request.headers.get("host", "")
        if self.trust_forwarded and request.scope.get("state", {}).get("forwarded_by_proxy"):
            scheme = _first(request.headers.get("x-forwarded-proto")) or scheme
            host = _first(request.headers.get("x-forwarded-host")) or host
        return f"{scheme}://{host}".lower()


def _first(value: str | None) -> str | None:
    return value.split(",")[0].strip() if value else None


def _origin_of(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"
