"""Routes are matched, authorised, limited and forwarded on one normal form of the path.

Downstreams decode percent-encoded unreserved characters (RFC 3986 §6.2.2.2), so Studio must
too: `/documents/%73tats` is `/documents/stats` to the service, and must be to Studio.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.proxy.errors import InvalidPath
from app.proxy.pathguard import validate_tail
from tests.proxy.conftest import Studio
from tests.proxy.test_pathguard import raw_get

UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


@pytest.mark.parametrize(
    ("tail", "normal"),
    [
        ("documents/%61dmin", "documents/admin"),
        ("%41%42%43/%7e%7E%2D%5F", "ABC/~~-_"),
        ("x%20y", "x%20y"),
        ("caf%c3%a9", "caf%C3%A9"),  # escapes that stay are written with upper-case hex
        ("100%25", "100%25"),
        ("a.%2e%2eb", "a...b"),  # not a dot segment
        ("plain/path", "plain/path"),
    ],
)
def test_tail_is_returned_in_normal_form(tail: str, normal: str) -> None:
    assert validate_tail(tail.encode()) == normal.encode()


@pytest.mark.parametrize("tail", ["%2e%2e", "a/%2E%2e/b", "%2e", "a/%2e;x/b", "%2E%2E;"])
def test_decoded_dot_segments_are_still_refused(tail: str) -> None:
    with pytest.raises(InvalidPath):
        validate_tail(tail.encode())


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=UNRESERVED.decode(), min_size=1, max_size=12).map(str.encode))
def test_any_encoding_of_unreserved_text_has_one_normal_form(text: bytes) -> None:
    if text.split(b";", 1)[0] in (b".", b".."):
        return
    encoded = b"".join(b"%%%02x" % c for c in text)
    assert validate_tail(encoded) == validate_tail(encoded.upper()) == text


async def test_encoded_literal_segment_gets_its_own_permission(studio: Studio) -> None:
    # `/documents/stats` needs nexus:stats, which the viewer lacks; `{document_id}` does not.
    for spelled in ("%73tats", "st%61ts", "%73%74%61%74%73", "%73tat%73"):
        r = await studio.get(f"/nexus/documents/{spelled}", who="viewer")
        assert r.status_code == 403, (spelled, r.text)
        assert r.json()["error"]["details"] == {"permission": "nexus:stats"}
    assert studio.fakes.nexus.calls() == []


async def test_downstream_receives_the_normal_form(studio: Studio) -> None:
    for target, raw_path, query in [
        ("/api/v1/nexus/documents/%73tats", "/documents/stats", ""),
        ("/api/v1/zen/caf%c3%a9/%7Euser?q=%61", "/caf%C3%A9/~user", "q=%61"),
    ]:
        status, body = await raw_get(studio.url, target)
        assert status == 200, body
        echo = orjson.loads(body)["result"]
        assert echo["raw_path"] == raw_path
        assert echo["query"] == query  # the query is the client's, byte for byte


WILDCARD_RULES: dict[str, Any] = {
    "zen": {
        "routes": [
            {"method": "GET", "path": "/admin/panel", "permission": "zen:admin"},
            {"method": "GET", "path": "/ask", "quota": {"limit": 1, "window": 60}},
        ]
    }
}


async def test_wildcard_route_rules_apply_to_encoded_spellings(start_studio: Any) -> None:
    async with start_studio(WILDCARD_RULES) as studio:
        r = await studio.get("/zen/%61dmin/panel", who="viewer")
        assert r.status_code == 403, r.text
        assert r.json()["error"]["details"] == {"permission": "zen:admin"}
        assert studio.fakes.zen.calls() == []
        assert (await studio.get("/zen/ask", who="viewer")).status_code == 200
        r = await studio.get("/zen/%61sk", who="viewer")
        assert r.status_code == 429, r.text  # the same route, so the same quota
        assert [c.path for c in studio.fakes.zen.calls()] == ["/ask"]
