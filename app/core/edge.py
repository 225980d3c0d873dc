"""The HTTP edge, as pure ASGI: security headers, header and body size limits, CORS."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import HeadersTooLarge, PayloadTooLarge
from app.core.render import send_error

BASE_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
# API responses are data, never documents: nothing may run or be framed.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# The docs pages (dev only) run Swagger UI and ReDoc from Studio's own origin: scripts, styles
# and the schema from 'self' only, no inline script, no CDN; Swagger's stylesheet draws its
# icons as data: images.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'{styles}; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self';{workers} base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# ReDoc's styled-components inserts empty <style> elements and fills them through the CSSOM
# (which CSP does not govern), and its bundle injects one fixed stylesheet (perfect-scrollbar's)
# as text. Their hashes instead of 'unsafe-inline': the empty element's, and that stylesheet's in
# the pinned redoc.standalone.js (a new bundle with another one shows as a CSP violation in
# tests/browser/test_docs_offline.py). Its search index runs in a worker the bundle builds from
# a blob: URL, which only a script already allowed can create.
REDOC_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
)
DOCS_CSP = (b"content-security-policy", DOCS_POLICY.format(styles="", workers="").encode())
REDOC_CSP = (
    b"content-security-policy",
    DOCS_POLICY.format(
        styles="".join(f" {h}" for h in REDOC_STYLE_HASHES), workers=" worker-src blob:;"
    ).encode(),
)
DOCS_PAGES = ("/docs", "/redoc")


def is_docs_path(path: str) -> bool:
    """`/docs`, `/redoc` and what lies under them (`/docs/assets/...`)."""
    return any(path == page or path.startswith(page + "/") for page in DOCS_PAGES)


def content_security_policy(path: str) -> tuple[bytes, bytes]:
    """The CSP header for a path: the API's, or the docs pages' own."""
    if path == "/redoc":
        return REDOC_CSP
    return DOCS_CSP if is_docs_path(path) else API_CSP


class SecurityHeadersMiddleware:
    """Adds the security headers every response should carry; HSTS only over HTTPS."""

    def __init__(self, app: ASGIApp, hsts_max_age: int, trust_forwarded_proto: bool) -> None:
        self.app = app
        self.hsts = (
            (b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode())
            if hsts_max_age > 0
            else None
        )
        self.trust_forwarded_proto = trust_forwarded_proto

    def _https(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        if self.trust_forwarded_proto and scope.get("state", {}).get("forwarded_by_proxy"):
            for key, value in scope["headers"]:
                if key == b"x-forwarded-proto":
                    return bytes(value).split(b",")[0].strip().lower() == b"https"
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(BASE_SECURITY_HEADERS)
        extra.append(content_security_policy(scope["path"]))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Judged at the answer: the request context (inside) has marked the peer by then.
                if self.hsts is not None and self._https(scope):
                    extra.append(self.hsts)
                present = {k for k, _ in message.get("headers", ())}
                message["headers"] = list(message.get("headers", ())) + [
                    (k, v) for k, v in extra if k not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestLimitsMiddleware:
    """431 for oversized headers; 413 for bodies over the limit, checked while they stream.

    Proxied paths are exempt from the body limit: each service enforces its own
    `max_body_bytes` in the forwarder.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_header_bytes: int,
        max_body_bytes: int,
        exempt_prefixes: Sequence[str],
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.exempt = tuple(exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = sum(len(k) + len(v) + 4 for k, v in scope["headers"]) + len(
            scope.get("raw_path") or b""
        )
        if size > self.max_header_bytes:
            await send_error(scope, send, HeadersTooLarge(), close=True)
            return
        if self.exempt and scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await send_error(scope, send, PayloadTooLarge(), close=True)
                    return

        received = 0
        response_started = False
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused, response_started
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now and tell the app the client went away: it stops reading, and
                    # whatever it still sends is dropped.
                    refused = True
                    if not response_started:
                        response_started = True
                        await send_error(scope, send, PayloadTooLarge(), close=True)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, counted_receive, tracking_send)


def cors(app: ASGIApp, settings: Settings) -> ASGIApp:
    """CORS from CORS_ALLOW_ORIGINS; credentials only with an explicit origin list."""
    origins = settings.cors_allow_origins
    if not origins:
        return app
    wildcard = "*" in origins  # dev only: production refuses it at start-up
    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_credentials=not wildcard,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-Request-ID",
            "X-CSRF-Token",
            "Last-Event-ID",
            "Accept",
        ],
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Content-Disposition",
        ],
        max_age=600,
    )
