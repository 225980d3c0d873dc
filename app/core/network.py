"""Client addresses and the public origin: a proxy's X-Forwarded-* headers are believed only
when the TCP peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import NamedTuple

from starlette.types import Scope

from app.core.config import IPNetwork


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Sequence[IPNetwork]
) -> bool:
    return any(addr in net for net in nets)


def peer_is_trusted(scope: Scope, trusted: Sequence[IPNetwork]) -> bool:
    """True when the TCP peer is one of TRUSTED_PROXIES (its forwarded headers count)."""
    if not trusted:
        return False
    addr = _parse(str((scope.get("client") or ("",))[0]))
    return addr is not None and _trusted(addr, trusted)


def client_ip(scope: Scope, trusted: Sequence[IPNetwork]) -> str:
    """The caller's address: the rightmost untrusted hop when the peer is a trusted proxy."""
    peer = (scope.get("client") or ("0.0.0.0", 0))[0]  # noqa: S104 - a placeholder, never bound
    if not trusted:
        return str(peer)
    peer_addr = _parse(str(peer))
    if peer_addr is None or not _trusted(peer_addr, trusted):
        return str(peer)
    hops: list[str] = []
    for key, value in scope["headers"]:
        if key == b"x-forwarded-for":
            hops.extend(value.decode("latin-1").split(","))
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            break  # garbage: stop believing the chain here
        if not _trusted(addr, trusted):
            return str(addr)
    return str(peer_addr)


PUBLIC_ORIGIN = "public_origin"  # request state key: the request's `PublicOrigin` or None
_SCHEMES = frozenset((b"http", b"https"))
# A DNS name or a bracketed IPv6 literal, with an optional port: nothing that could carry a
# path, credentials or a second header.
_HOST = re.compile(
    rb"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    rb"|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?"
)


class PublicOrigin(NamedTuple):
    """The scheme and host the client reached Studio by (X-Forwarded-Proto/-Host downstream)."""

    scheme: bytes | None
    host: bytes | None


def configured_origin(origin: tuple[str, str] | None) -> PublicOrigin | None:
    """PUBLIC_BASE_URL's (scheme, host) as header bytes, once at start-up."""
    if origin is None:
        return None
    scheme, host = origin
    return PublicOrigin(scheme.encode("ascii"), host.lower().encode("idna"))


def _last(value: bytes) -> bytes:
    # An appending proxy puts its own value last; anything before it came from further out.
    return value.rsplit(b",", 1)[-1].strip().lower()


def _valid_host(value: bytes) -> bytes | None:
    if len(value) > 255:
        return None
    match = _HOST.fullmatch(value)
    if match is None or (match[1] is not None and int(match[1]) > 65535):
        return None
    return value


def forwarded_origin(scope: Scope) -> PublicOrigin | None:
    """The scheme and host a trusted proxy stated, each dropped unless well-formed."""
    scheme: bytes | None = None
    host: bytes | None = None
    for key, value in scope["headers"]:
        if key == b"x-forwarded-proto":
            scheme = _last(value)
        elif key == b"x-forwarded-host":
            host = _last(value)
    if scheme is not None and scheme not in _SCHEMES:
        scheme = None
    if host is not None:
        host = _valid_host(host)
    if scheme is None and host is None:
        return None
    return PublicOrigin(scheme, host)
