"""Path tails: traversal and encoding tricks are refused, the downstream origin never moves."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote, urlsplit

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.proxy.errors import InvalidPath
from app.proxy.pathguard import build_target, split_tail, validate_tail
from tests.proxy.conftest import Studio, token

ATTACKS = [
    "/api/v1/zen/a/../b",
    "/api/v1/zen/..",
    "/api/v1/zen/a/..",
    "/api/v1/zen/a/./b",
    "/api/v1/zen/./x",
    "/api/v1/zen/a/%2e%2e/b",
    "/api/v1/zen/a/%2E%2e/b",
    "/api/v1/zen/a/.%2e/b",
    "/api/v1/zen/a/%2e./b",
    "/api/v1/zen/a/%2e/b",
    "/api/v1/zen/a/%2F..%2Fadmin",
    # An encoded `/` separates segments, and the segments it makes are checked like any other.
    "/api/v1/zen/..%2Fadmin",
    "/api/v1/zen/a%2F..%2Fadmin",
    "/api/v1/zen/a%2f..",
    "/api/v1/zen/%2F..%2Fadmin",
    "/api/v1/zen/%2Fetc%2Fpasswd",
    "/api/v1/zen/%2e%2e%2Fadmin",
    "/api/v1/zen/a%2F%2E%2E%2Fb",
    "/api/v1/zen/a%2F.%2Fb",
    "/api/v1/zen/a%2F..;x%2Fb",
    "/api/v1/zen/a%252Fb",
    "/api/v1/zen/a%252f..%252fb",
    "/api/v1/zen/a%25%32%46b",
    "/api/v1/zen/a%2F%5C..%5Cb",
    "/api/v1/zen/a%2F%00",
    "/api/v1/zen%2Fchat",
    "/api/v1/zen/a%5cb",
    "/api/v1/zen/a/%5C..%5Cb",
    "/api/v1/zen/a/%252e%252e/b",
    "/api/v1/zen/a/%252fb",
    "/api/v1/zen/a/%25%32%65",
    "/api/v1/zen/a/..;/b",
    "/api/v1/zen/a/%2e%2e;x/b",
    "/api/v1/zen/a/%00",
    "/api/v1/zen/a/%0d%0aX-Injected:1",
    "/api/v1/zen/a/%zz",
    "/api/v1/zen/a/%2",
    "/api/v1/zen//etc/passwd",
    "/api/v1/%7aen/x",  # an encoded service name
    "/api/v1/zen/a\\b",
    "/api/v1/zen/a\\..\\b",
]


async def raw_get(base_url: str, target: str) -> tuple[int, bytes]:
    """Send a request line exactly as written (clients would normalise these paths)."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token('admin')}\r\n"
        "Connection: close\r\n\r\n".encode("latin-1")
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("target", ATTACKS)
async def test_path_attacks_are_invalid_path_and_never_sent(studio: Studio, target: str) -> None:
    status, body = await raw_get(studio.url, target)
    assert status == 400, (target, body)
    assert orjson.loads(body)["error"]["code"] == "INVALID_PATH"
    assert studio.fakes.zen.requests == []


async def test_ordinary_paths_still_pass(studio: Studio) -> None:
    for target, seen in [
        ("/api/v1/zen/a/b%20c/report%2Bv2.pdf", "/a/b%20c/report%2Bv2.pdf"),
        ("/api/v1/zen/a/.../b", "/a/.../b"),
        ("/api/v1/zen/.well-known/x", "/.well-known/x"),
        ("/api/v1/zen/docs/%C3%A9t%C3%A9", "/docs/%C3%A9t%C3%A9"),
        ("/api/v1/zen/100%25", "/100%25"),
        ("/api/v1/zen/a;v=1/b", "/a;v=1/b"),
        ("/api/v1/zen/", "/"),
        ("/api/v1/zen/chat%2Fhistory", "/chat/history"),
        ("/api/v1/zen/a%2fb%2Fc", "/a/b/c"),
        ("/api/v1/zen/a%2F...%2Fb", "/a/.../b"),
    ]:
        status, body = await raw_get(studio.url, target)
        assert status == 200, (target, body)
        assert orjson.loads(body)["result"]["raw_path"] == seen


@pytest.mark.parametrize(
    "tail",
    ["a/b", "", "a/", "a//b", "x%20y", "a.b/c..d/...", "%C3%A9", "~user/@x:y", "a;b=c"],
)
def test_accepted_tails(tail: str) -> None:
    assert validate_tail(tail.encode()) == tail.encode()


@pytest.mark.parametrize(
    ("tail", "normal"),
    [
        ("a%2Fb", "a/b"),
        ("a%2fb", "a/b"),
        ("chat%2Fhistory%2F42", "chat/history/42"),
        ("a%2F%2Fb", "a//b"),  # as `a//b` written literally
        ("a%2F", "a/"),
        ("a%2F.well-known", "a/.well-known"),
        ("a%2F%2e%2e%2e", "a/..."),
        ("100%25%2F2", "100%25/2"),  # a literal `%` before a separator
    ],
)
def test_an_encoded_slash_is_a_segment_separator(tail: str, normal: str) -> None:
    assert validate_tail(tail.encode()) == normal.encode()


@pytest.mark.parametrize(
    "tail",
    ["..%2F", "%2F..%2F", "%2e%2e%2F", "a%2F..", "a%2F%2e", "%2F", "%2fa", "%252F", "a%252fb",
     "%25%32%46", "%2%2F", "%%2F", "a%2F..;x%2Fb", "a%2F%5Cb", "a%2F%0a"],
)  # fmt: skip
def test_encoded_separators_do_not_bypass_the_checks(tail: str) -> None:
    with pytest.raises(InvalidPath):
        validate_tail(tail.encode())


@pytest.mark.parametrize(
    "tail",
    ["..", ".", "a/..", "%2e", "%2E%2E", "a/%2e%2e/", "a%5Cb", "%2525", "%25%32%65",
     "a b", "a\tb", "%7f", "é", "a#b", "a?b", "/a", "..;", "%"],
)  # fmt: skip
def test_refused_tails(tail: str) -> None:
    with pytest.raises(InvalidPath):
        validate_tail(tail.encode("utf-8"))


def test_split_tail_refuses_an_encoded_prefix() -> None:
    assert split_tail(b"/api/v1/zen/a/b", b"/api/v1/zen/") == b"a/b"
    with pytest.raises(InvalidPath):
        split_tail(b"/api/v1/z%65n/a", b"/api/v1/zen/")


def fully_decoded(text: str) -> str:
    for _ in range(10):
        decoded = unquote(text, errors="replace")
        if decoded == text:
            break
        text = decoded
    return text


PIECES = st.sampled_from(
    [".", "..", "/", "%", "2", "e", "E", "f", "F", "5", "c", "C", "%2e", "%2E", "%2f", "%2F",
     "%5c", "%25", "%32", "%46", "%65", "\\", ";", "a", "b", "?", "#", "@", ":", "//", "%00",
     " "]
)  # fmt: skip
TAILS = st.lists(PIECES, max_size=14).map("".join)


@settings(max_examples=3000, deadline=None)
@given(TAILS)
def test_no_accepted_tail_has_a_dot_segment_after_any_decoding(tail: str) -> None:
    try:
        validate_tail(tail.encode("latin-1"))
    except InvalidPath:
        return
    decoded = fully_decoded(tail)
    assert "\\" not in decoded
    assert not decoded.startswith("/")
    # Only the separators the client wrote, literally or encoded once, survive as `/`.
    assert decoded.count("/") == tail.count("/") + tail.lower().count("%2f")
    for segment in decoded.split("/"):
        assert segment.split(";")[0] not in (".", ".."), (tail, decoded)


BASES = st.sampled_from(
    ["http://127.0.0.1:9101", "https://nexus.internal", "http://agents:9103/orchestrator"]
)


@settings(max_examples=2000, deadline=None)
@given(BASES, TAILS, st.sampled_from(["", "a=1", "x=%2F&y=@evil.com", "u=http://x:1/"]))
def test_built_url_keeps_scheme_host_and_port(base: str, tail: str, query: str) -> None:
    try:
        validate_tail(tail.encode("latin-1"))
    except InvalidPath:
        return
    origin = urlsplit(base)
    target = build_target(origin.path.encode(), tail.encode("latin-1"), query.encode())
    assert target.startswith(origin.path.encode() + b"/")
    url = base[: len(base) - len(origin.path)] + target.decode("latin-1")
    parsed = urlsplit(url)
    assert (parsed.scheme, parsed.hostname, parsed.port) == (
        origin.scheme,
        origin.hostname,
        origin.port,
    )
    as_httpx = httpx.URL(url)
    assert (as_httpx.scheme, as_httpx.host, as_httpx.port) == (
        origin.scheme,
        origin.hostname,
        origin.port,
    )
    assert parsed.path.startswith(origin.path + "/")
