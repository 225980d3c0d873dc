"""Client addresses: X-Forwarded-For is believed only when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

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
