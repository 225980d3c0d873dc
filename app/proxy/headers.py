"""Header rules for both directions, as byte sets computed once at import.

Outbound, the client's credentials and anything that claims to describe the user or the
network path are dropped: Studio alone states who is calling (`X-User-*`), from where
(`X-Forwarded-*`) and with which service credentials (`Authorization`); so is anything that
would make a downstream rewrite the request (method or URL overrides). Names are compared with
`_` read as `-`: WSGI/CGI servers, and nginx with `underscores_in_headers on`, take `X_User_Id`
for `X-User-Id`. `Accept-Encoding` is dropped too, so downstreams answer uncompressed and JSON
can be put in the envelope.
Inbound, cookies, the downstream's own auth challenge, and the CORS and security headers Studio
sets itself never reach the browser.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import uuid4

from starlette.types import Scope

from app.core.errors import BadRequest
from app.core.network import PUBLIC_ORIGIN, PublicOrigin
from app.identity.principal import Principal

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)
OUTBOUND_DROP = HOP_BY_HOP | frozenset(
    (
        b"authorization",
        b"cookie",
        b"host",
        b"forwarded",
        b"x-real-ip",
        b"x-request-id",
        b"content-length",  # re-stated by the forwarder from what it actually sends
        b"expect",  # the ASGI server already answered 100-continue
        b"accept-encoding",
        b"x-csrf-token",  # a browser session secret of Studio's, not the service's
        # Claims of the client's address: Studio states it in X-Forwarded-For.
        b"x-real-ip",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
        # Method and URL overrides: the downstream would serve another request than the one
        # Studio matched and authorised.
        b"x-http-method-override",
        b"x-http-method",
        b"x-method-override",
        b"x-original-url",
        b"x-original-uri",
        b"x-original-method",
        b"x-rewrite-url",
    )
)
OUTBOUND_DROP_PREFIXES = (b"x-user-", b"x-forwarded-")
INBOUND_DROP = HOP_BY_HOP | frozenset(
    (
        b"set-cookie",
        b"set-cookie2",
        b"www-authenticate",  # a Basic challenge would make the browser prompt for a password
        b"server",
        b"date",  # the ASGI server sets its own
        b"x-request-id",  # Studio's id is the one the client sees
        # Studio's security headers (app/core/edge.py) are the policy; a downstream's would
        # replace them, since the edge adds only what a response lacks.
        b"content-security-policy",
        b"content-security-policy-report-only",
        b"strict-transport-security",
        b"x-frame-options",
        b"x-content-type-options",
        b"referrer-policy",
        b"cross-origin-opener-policy",
    )
)
INBOUND_DROP_PREFIX = b"access-control-"  # CORS is Studio's (CORS_ALLOW_ORIGINS)
_IDENTITY = (b"", b"identity")
_UNDERSCORE = 0x5F  # an int: `int in bytes` is a bare memchr, `b"_" in bytes` costs ~8x more


@dataclass(slots=True)
class ClientHeaders:
    """The client's headers that may travel on, and the request framing they declared."""

    forward: RawHeaders
    host: bytes | None
    content_length: int | None
    chunked: bool


@dataclass(slots=True)
class DownstreamHeaders:
    """The downstream's headers that may reach the client, and what the body is."""

    forward: RawHeaders
    media: bytes  # lower-case media type without parameters; b"" when absent
    content_length: int | None
    encoded: bool  # a content-encoding other than identity


def _tokens(value: bytes, dropped: frozenset[bytes]) -> set[bytes]:
    """Header names listed in a `Connection` value, folded, less those dropped anyway."""
    names: set[bytes] = set()
    for token in value.split(b","):
        name = token.strip().lower()
        if _UNDERSCORE in name:
            name = name.replace(b"_", b"-")
        if name and name not in dropped:
            names.add(name)
    return names


def _fold(name: bytes) -> bytes:
    """`name` with `_` read as `-` (no copy for the usual name without `_`)."""
    return name.replace(b"_", b"-") if _UNDERSCORE in name else name


def _dropped_outbound(name: bytes) -> bool:
    return name in OUTBOUND_DROP or name.startswith(OUTBOUND_DROP_PREFIXES)


def outbound(headers: Iterable[tuple[bytes, bytes]]) -> ClientHeaders:
    """Filter the client's (lower-case, ASGI) headers for the downstream."""
    forward: RawHeaders = []
    host: bytes | None = None
    length: bytes | None = None
    chunked = False
    named: set[bytes] | None = None
    for name, value in headers:
        if name in OUTBOUND_DROP or name.startswith(OUTBOUND_DROP_PREFIXES):
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"host":
                host = value
            elif name == b"connection":
                tokens = _tokens(value, OUTBOUND_DROP)
                named = tokens if named is None else named | tokens
            continue
        if 0x5F in name and _dropped_outbound(name.replace(b"_", b"-")):  # 0x5F: `_`
            continue  # another spelling of a dropped name; never framing: only `-` frames
        forward.append((name, value))
    if named:  # usually None or empty: `Connection: keep-alive` names nothing to drop here
        forward = [(n, v) for n, v in forward if _fold(n) not in named]
    content_length: int | None = None
    if length is not None:
        if not length.strip().isdigit():
            raise BadRequest("Content-Length is not a number")
        content_length = int(length)
    return ClientHeaders(forward, host, content_length, chunked)


def inbound(
    headers: Iterable[tuple[bytes, bytes]], location: tuple[bytes, bytes] | None = None
) -> DownstreamHeaders:
    """Filter the downstream's headers for the client; `location` = (internal, public) prefix."""
    forward: RawHeaders = []
    media = b""
    length: int | None = None
    encoded = False
    named: set[bytes] | None = None
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in INBOUND_DROP or name.startswith(INBOUND_DROP_PREFIX):
            if name == b"connection":
                named = _tokens(value, INBOUND_DROP)
            continue
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
        elif name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"content-encoding":
            encoded = value.strip().lower() not in _IDENTITY
        elif name == b"location" and location is not None:
            value = _rewrite_location(value, *location)
        forward.append((name, value))
    if named:
        forward = [(n, v) for n, v in forward if _fold(n) not in named]
    return DownstreamHeaders(forward, media, length, encoded)


def _rewrite_location(value: bytes, internal: bytes, public: bytes) -> bytes:
    # A redirect to the service's own base URL must not reveal the internal address.
    if value.startswith(internal):
        rest = value[len(internal) :]
        if not rest or rest[:1] in (b"/", b"?", b"#"):
            return public + (rest if rest[:1] == b"/" else b"/" + rest)
    return value


def is_json(media: bytes) -> bool:
    """`application/json` or any `+json` media type."""
    return media == b"application/json" or media.endswith(b"+json")


def identity_headers(principal: Principal) -> RawHeaders:
    """Who calls, as every downstream call of Studio states it."""
    return [
        (b"x-user-id", principal.user_id.encode()),
        (b"x-user-email", principal.email.encode()),
        (b"x-user-roles", ",".join(principal.roles).encode()),
    ]


def studio_headers(scope: Scope, host_header: bytes, principal: Principal) -> RawHeaders:
    """What Studio states to the downstream: who calls, from where, and the request id."""
    state = scope.get("state") or {}
    request_id: str = state.get("request_id") or uuid4().hex
    client_ip: str = state.get("client_ip") or (scope.get("client") or ("unknown",))[0]
    added = [
        (b"host", host_header),
        (b"x-request-id", request_id.encode("ascii")),
        (b"x-forwarded-for", client_ip.encode("ascii")),
    ]
    added += identity_headers(principal)
    # Never the client's own Host: PUBLIC_BASE_URL or a trusted proxy's word (middleware).
    origin: PublicOrigin | None = state.get(PUBLIC_ORIGIN)
    if origin is not None:
        if origin.scheme is not None:
            added.append((b"x-forwarded-proto", origin.scheme))
        if origin.host is not None:
            added.append((b"x-forwarded-host", origin.host))
    return added
