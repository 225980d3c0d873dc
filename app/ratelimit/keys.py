"""Whose budget a request spends: the key of a client address for per-IP limits."""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache


@lru_cache(maxsize=4096)
def client_key(address: str, ipv6_prefix: int) -> str:
    """IPv4 clients by address; IPv6 clients by their `/ipv6_prefix` network, since anyone
    holds a whole /64 (an IPv4-mapped address is its IPv4 address); anything unparseable by
    a bounded digest of its text, which never looks like an address."""
    try:
        addr = ipaddress.ip_address(address.strip())
    except ValueError:
        return "?" + hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:32]
    if isinstance(addr, ipaddress.IPv4Address):
        return str(addr)
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    host_bits = 128 - ipv6_prefix
    network = ipaddress.IPv6Address(int(addr) >> host_bits << host_bits)  # drops any zone id
    return f"{network}/{ipv6_prefix}"
