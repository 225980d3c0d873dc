"""What Studio states downstream and what a client may not: units of `app.proxy.headers` that
the table-driven spoofing tests leave out."""

from __future__ import annotations

import pytest

from app.core.errors import BadRequest
from app.identity.principal import Principal
from app.proxy.headers import outbound, studio_headers

PRINCIPAL = Principal(
    user_id="u-1",
    email="user@example.com",
    session_id="s-1",
    roles=("viewer",),
    permissions=frozenset({"zen:chat"}),
)


def test_forwarded_for_is_the_client_the_middleware_found_not_the_peer() -> None:
    # Behind a trusted proxy the TCP peer is the proxy; the client is what the middleware read.
    scope = {"client": ("10.0.0.1", 4321), "state": {"client_ip": "203.0.113.7"}}
    added = dict(studio_headers(scope, b"svc.internal", PRINCIPAL))
    assert added[b"x-forwarded-for"] == b"203.0.113.7"
    assert added[b"host"] == b"svc.internal"
    assert added[b"x-user-id"] == b"u-1"


def test_forwarded_for_falls_back_to_the_peer() -> None:
    added = dict(studio_headers({"client": ("198.51.100.2", 1)}, b"svc", PRINCIPAL))
    assert added[b"x-forwarded-for"] == b"198.51.100.2"


@pytest.mark.parametrize(
    "name",
    [b"x-original-uri", b"x_original_uri", b"x-original-method", b"x_original_method",
     b"x-original-url", b"x-rewrite-url"],
)  # fmt: skip
def test_url_and_method_overrides_are_never_forwarded(name: bytes) -> None:
    client = outbound([(name, b"/admin"), (b"accept", b"*/*")])
    assert client.forward == [(b"accept", b"*/*")]


@pytest.mark.parametrize("value", [b"-1", b"+5", b"1e3", b"0x10", b"", b" "])
def test_a_content_length_that_is_not_digits_is_refused(value: bytes) -> None:
    with pytest.raises(BadRequest):
        outbound([(b"content-length", value)])


def test_a_digit_content_length_is_read() -> None:
    assert outbound([(b"content-length", b" 42 ")]).content_length == 42
