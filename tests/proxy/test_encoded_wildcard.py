"""Multi-segment wildcard calls as generated clients and Swagger UI send them: `{path}`
percent-encoded (`chat%2Fhistory`). Studio reads the encoded `/` as a separator, checks the
segments it makes like any other, and the downstream receives `/chat/history`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.proxy.conftest import Studio
from tests.proxy.test_path_normal_form import WILDCARD_RULES


async def test_an_encoded_path_reaches_the_downstream_as_segments(studio: Studio) -> None:
    # What openapi-python-client and openapi-fetch do with `{path}`: quote(path, safe="").
    path = quote("chat/history/42", safe="")
    assert path == "chat%2Fhistory%2F42"
    r = await studio.get(f"/zen/{path}?limit=5&q=a%20b&q=c")
    assert r.status_code == 200, r.text
    echo = r.json()["result"]
    assert echo["raw_path"] == "/chat/history/42"
    assert echo["query"] == "limit=5&q=a%20b&q=c"  # the query is forwarded byte for byte


async def test_the_service_base_path_is_kept(studio: Studio) -> None:
    r = await studio.get("/agents/runs%2F7%2fsteps")
    assert r.status_code == 200, r.text
    assert r.json()["result"]["raw_path"] == "/orchestrator/runs/7/steps"


@pytest.mark.parametrize(
    "path", ["..%2Fadmin", "a%2F..%2Fb", "%2Fetc%2Fpasswd", "%2e%2e%2Fx", "a%252Fb", "a%2F%5Cb"]
)
async def test_encoded_traversal_is_still_refused(studio: Studio, path: str) -> None:
    r = await studio.get(f"/zen/{path}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "INVALID_PATH"
    assert studio.fakes.zen.requests == []


async def test_explicit_routes_are_matched_on_the_separated_segments(studio: Studio) -> None:
    # `/documents/stats` needs nexus:stats, which the viewer lacks: an encoded `/` cannot turn
    # it into `/documents/{document_id}`.
    r = await studio.get("/nexus/documents%2Fstats", who="viewer")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["details"] == {"permission": "nexus:stats"}
    r = await studio.get("/nexus/documents%2Fd-1")
    assert r.status_code == 200, r.text
    assert r.json()["result"]["raw_path"] == "/documents/d-1"
    assert [c.path for c in studio.fakes.nexus.calls()] == ["/documents/d-1"]


async def test_wildcard_route_rules_apply_to_encoded_separators(start_studio: Any) -> None:
    async with start_studio(WILDCARD_RULES) as studio:
        r = await studio.get("/zen/admin%2Fpanel", who="viewer")
        assert r.status_code == 403, r.text
        assert r.json()["error"]["details"] == {"permission": "zen:admin"}
        assert studio.fakes.zen.calls() == []
