"""`client_ip` as a unit: which hop of X-Forwarded-For is believed, for which peer."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from starlette.types import Scope

from app.core.config import IPNetwork
from app.core.network import client_ip, peer_is_trusted

PROXIES: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("fd00::/8"),
)


def _scope(peer: str | None, *forwarded: str) -> Scope:
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    return {
        "type": "http",
        "client": None if peer is None else (peer, 4321),
        "headers": headers,
    }


def _ip(peer: str | None, *forwarded: str, trusted: Sequence[IPNetwork] = PROXIES) -> str:
    return client_ip(_scope(peer, *forwarded), trusted)


def test_no_trusted_proxies_the_peer_is_the_client() -> None:
    assert _ip("10.0.0.1", "1.2.3.4", trusted=()) == "10.0.0.1"


def test_untrusted_peer_forwarded_for_is_ignored() -> None:
    assert _ip("203.0.113.9", "1.2.3.4") == "203.0.113.9"
    assert not peer_is_trusted(_scope("203.0.113.9"), PROXIES)


def test_unparsable_peer_is_returned_as_is() -> None:
    assert _ip("testclient", "1.2.3.4") == "testclient"


def test_missing_peer_is_the_placeholder() -> None:
    assert _ip(None, "1.2.3.4") == "0.0.0.0"


def test_trusted_peer_without_header_is_the_client() -> None:
    assert _ip("10.0.0.1") == "10.0.0.1"
    assert peer_is_trusted(_scope("10.0.0.1"), PROXIES)


def test_trusted_peer_single_hop() -> None:
    assert _ip("10.0.0.1", "1.2.3.4") == "1.2.3.4"


def test_rightmost_untrusted_hop_wins_over_a_spoofed_left() -> None:
    # The client wrote 6.6.6.6 itself; the proxy appended the address it saw.
    assert _ip("10.0.0.1", "6.6.6.6, 1.2.3.4") == "1.2.3.4"


def test_trusted_chain_is_walked_through() -> None:
    assert _ip("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.3, 10.0.0.2") == "1.2.3.4"


def test_several_headers_are_one_list() -> None:
    assert _ip("10.0.0.1", "6.6.6.6, 1.2.3.4", "10.0.0.2") == "1.2.3.4"


def test_all_hops_trusted_falls_back_to_the_peer() -> None:
    assert _ip("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.1"


def test_ipv4_with_port() -> None:
    assert _ip("10.0.0.1", "1.2.3.4:5678") == "1.2.3.4"


def test_ipv6_hop() -> None:
    assert _ip("10.0.0.1", "2001:db8::1") == "2001:db8::1"


def test_bracketed_ipv6_with_port() -> None:
    assert _ip("10.0.0.1", "[2001:db8::1]:443") == "2001:db8::1"


def test_ipv6_is_normalised() -> None:
    assert _ip("10.0.0.1", "2001:DB8:0:0::1") == "2001:db8::1"


def test_ipv6_trusted_peer_and_chain() -> None:
    assert _ip("fd00::1", "2001:db8::7, [fd00::2]:80") == "2001:db8::7"


def test_whitespace_around_hops_is_ignored() -> None:
    assert _ip("10.0.0.1", "  1.2.3.4  ,   10.0.0.2 ") == "1.2.3.4"


@pytest.mark.parametrize("garbage", ["unknown", "", "1.2.3", "1.2.3.4.5", "_hidden", "[::1"])
def test_garbage_hop_ends_the_walk(garbage: str) -> None:
    # Nothing left of an unparsable hop is believed: the last trusted hop before it is the peer.
    assert _ip("10.0.0.1", f"6.6.6.6, {garbage}, 10.0.0.2") == "10.0.0.1"


def test_garbage_rightmost_hop_gives_the_peer() -> None:
    assert _ip("10.0.0.1", "6.6.6.6, garbage") == "10.0.0.1"


def test_untrusted_hop_right_of_garbage_is_still_the_client() -> None:
    assert _ip("10.0.0.1", "garbage, 1.2.3.4") == "1.2.3.4"
