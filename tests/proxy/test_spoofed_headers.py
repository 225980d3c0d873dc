"""Headers a client or a downstream must not be able to state, in any spelling.

Outbound: identity, address, credential and request-rewriting headers are dropped whatever
their spelling (`_` for `-`, any case), because WSGI/CGI servers and nginx with
`underscores_in_headers on` read `X_User_Id` as `X-User-Id`. Inbound: CORS and security
headers are Studio's to set, never a downstream's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from app.proxy.headers import inbound, outbound
from tests.proxy.conftest import Studio, service, token
from tests.support import live_server

# Every name a client must not get past Studio, hyphenated and lower-case.
SPOOFABLE = (
    "x-user-id",
    "x-user-email",
    "x-user-roles",
    "x-user-anything",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-prefix",
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-csrf-token",
    "x-request-id",
    "x-real-ip",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "true-client-ip",
    "cf-connecting-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "forwarded",
    "content-length",
    "transfer-encoding",
)


def folded(name: str) -> str:
    return name.lower().replace("_", "-")


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """One of SPOOFABLE with each `-` possibly `_` and each letter in either case."""
    name = draw(st.sampled_from(SPOOFABLE))
    out = []
    for char in name:
        if char == "-":
            out.append(draw(st.sampled_from("-_")))
        else:
            out.append(char.upper() if draw(st.booleans()) else char)
    return "".join(out)


@settings(max_examples=500, deadline=None)
@given(spellings())
def test_no_spelling_of_a_spoofable_header_is_forwarded(spelled: str) -> None:
    # ASGI servers hand names over lower-cased; `_` survives.
    name = spelled.lower().encode()
    client = outbound([(name, b"5"), (b"accept", b"*/*")])
    assert client.forward == [(b"accept", b"*/*")], spelled


def test_underscore_framing_headers_are_dropped_not_believed() -> None:
    client = outbound([(b"content_length", b"5"), (b"transfer_encoding", b"chunked")])
    assert client.forward == []
    assert client.content_length is None
    assert client.chunked is False


def test_other_underscore_names_pass_untouched() -> None:
    client = outbound([(b"x_custom_thing", b"1"), (b"x-custom", b"2")])
    assert client.forward == [(b"x_custom_thing", b"1"), (b"x-custom", b"2")]


def test_connection_named_headers_are_dropped_in_either_spelling() -> None:
    client = outbound(
        [
            (b"connection", b"keep-alive, X_Drop_Me, x-also-me"),
            (b"x-drop-me", b"1"),
            (b"x_drop_me", b"2"),
            (b"x_also_me", b"3"),
            (b"x-kept", b"4"),
        ]
    )
    assert client.forward == [(b"x-kept", b"4")]


# The table the live test sends: (header as the client writes it, value).
TABLE = [
    ("X_User_Id", "spoofed-1"),
    ("x_user_id", "spoofed-2"),
    ("X-USER_ID", "spoofed-3"),
    ("X_User_Roles", "spoofed-admin"),
    ("x_user_email", "spoofed@evil.example"),
    ("X_USER_ANYTHING", "spoofed-4"),
    ("x_forwarded_for", "6.6.6.6-spoofed"),
    ("X_Forwarded_Host", "spoofed.example"),
    ("x-forwarded_proto", "spoofed"),
    ("X-HTTP-Method-Override", "spoofed-DELETE"),
    ("X_HTTP_Method", "spoofed-DELETE"),
    ("X-Method-Override", "spoofed-DELETE"),
    ("X-Original-URL", "/spoofed/admin"),
    ("X_Rewrite_URL", "/spoofed/admin"),
    ("True-Client-IP", "spoofed-6.6.6.6"),
    ("CF_Connecting_IP", "spoofed-6.6.6.6"),
    ("X-Client-IP", "spoofed-6.6.6.6"),
    ("X_Cluster_Client_IP", "spoofed-6.6.6.6"),
    ("X_Real_IP", "spoofed-6.6.6.6"),
    ("Proxy_Authorization", "Basic spoofed"),
    ("X_CSRF_Token", "spoofed-csrf"),
    ("Cookie_", "x"),  # not a spoofable name: passes (folds to `cookie-`)
    ("Connection", "keep-alive, X_Drop_Me"),
    ("X-Drop-Me", "spoofed-hop"),
    ("X-Custom_Kept", "kept"),
]


async def test_downstream_never_sees_a_spoofed_identity_in_any_spelling(studio: Studio) -> None:
    headers = [("Authorization", f"Bearer {token('admin')}"), *TABLE]
    r = await studio.http.get("/api/v1/zen/whoami", headers=headers)
    assert r.status_code == 200, r.text
    received: list[tuple[str, str]] = [tuple(h) for h in r.json()["result"]["headers"]]
    leaked = [(n, v) for n, v in received if "spoofed" in v]
    assert leaked == []
    names = {folded(n) for n, _ in received}
    assert {n: v for n, v in received if folded(n) in ("x-user-id", "x-user-roles")} == {
        "x-user-id": "u-admin",
        "x-user-roles": "admin,editor",
    }
    assert "x-forwarded-for" in names  # Studio's own, stated once
    assert [v for n, v in received if folded(n) == "x-forwarded-for"] == ["127.0.0.1"]
    assert ("x-custom_kept", "kept") in received
    assert ("cookie_", "x") in received
    assert [c.method for c in studio.fakes.zen.calls("/whoami")] == ["GET"]


def test_downstream_cors_and_security_headers_are_dropped() -> None:
    info = inbound(
        [
            (b"Access-Control-Allow-Origin", b"*"),
            (b"Access-Control-Allow-Credentials", b"true"),
            (b"access-control-expose-headers", b"x-secret"),
            (b"Content-Security-Policy", b"default-src *"),
            (b"Content-Security-Policy-Report-Only", b"default-src *"),
            (b"Strict-Transport-Security", b"max-age=0"),
            (b"X-Frame-Options", b"ALLOWALL"),
            (b"X-Content-Type-Options", b"sniff"),
            (b"Referrer-Policy", b"unsafe-url"),
            (b"Cross-Origin-Opener-Policy", b"unsafe-none"),
            (b"Content-Type", b"text/html"),
            (b"X-Kept", b"1"),
        ]
    )
    assert info.forward == [(b"content-type", b"text/html"), (b"x-kept", b"1")]


DOWNSTREAM_POLICY = [
    (b"content-type", b"text/html"),
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-credentials", b"true"),
    (b"access-control-allow-headers", b"*"),
    (b"content-security-policy", b"default-src * 'unsafe-inline'"),
    (b"content-security-policy-report-only", b"default-src *"),
    (b"x-frame-options", b"ALLOWALL"),
    (b"referrer-policy", b"unsafe-url"),
    (b"strict-transport-security", b"max-age=0"),
    (b"x-downstream", b"kept"),
]


async def policy_downstream(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b"<script>alert(1)</script>"
    headers = [*DOWNSTREAM_POLICY, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def policy_url() -> AsyncIterator[str]:
    async with live_server(policy_downstream) as url:
        yield url


async def test_downstream_policy_headers_never_reach_the_client(
    start_studio: Any, policy_url: str
) -> None:
    async with start_studio({"page": service(policy_url)}) as studio:
        r = await studio.get("/page/x", headers={"Origin": "https://evil.example"})
        # An answer of Studio's own (no such service): Studio's policy headers, where it has any.
        own = await studio.get("/nope/x", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert own.status_code == 404
    assert r.headers["x-downstream"] == "kept"
    for raw_name, raw_value in DOWNSTREAM_POLICY[1:-1]:
        name, value = raw_name.decode(), raw_value.decode()
        assert value not in r.headers.get_list(name), name
        assert r.headers.get_list(name) == own.headers.get_list(name), name
