"""Routing, RBAC, headers and credentials, end to end through uvicorn to real fake services."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from tests.proxy.conftest import SERVICE_PASSWORD, SERVICE_USER, RotatingProvider, Studio


def echoed(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    result: dict[str, Any] = body["result"]
    return result


def header_map(echo: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        found.setdefault(name, []).append(value)
    return found


async def test_explicit_route_reaches_nexus(studio: Studio) -> None:
    echo = echoed(await studio.get("/nexus/documents/doc-42"))
    assert echo["service"] == "nexus"
    assert echo["method"] == "GET"
    assert echo["path"] == "/documents/doc-42"
    assert len(studio.fakes.nexus.calls("/documents/doc-42")) == 1


async def test_unlisted_path_is_route_not_found_and_never_sent(studio: Studio) -> None:
    for method, path in [
        ("GET", "/nexus/admin/secrets"),
        ("GET", "/nexus/documents/1/2/3"),
        ("PUT", "/nexus/documents"),  # listed path, unlisted method
        ("GET", "/nexus/documents/"),  # a trailing slash is another path
        ("GET", "/nexus/"),
    ]:
        r = await studio.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "ROUTE_NOT_FOUND"
        assert r.headers["x-request-id"]
    assert studio.fakes.nexus.calls() == []


async def test_literal_segment_wins_over_placeholder(studio: Studio) -> None:
    # /documents/stats has its own permission, which the viewer lacks; /documents/{id} does not.
    assert (await studio.get("/nexus/documents/other", who="viewer")).status_code == 200
    r = await studio.get("/nexus/documents/stats", who="viewer")
    assert r.status_code == 403
    assert r.json()["error"]["details"] == {"permission": "nexus:stats"}
    assert echoed(await studio.get("/nexus/documents/stats"))["path"] == "/documents/stats"


async def test_unknown_service(studio: Studio) -> None:
    r = await studio.get("/nope/anything")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "SERVICE_NOT_FOUND"


async def test_wildcard_keeps_method_raw_query_and_body(studio: Studio) -> None:
    payload = {"question": "what?", "n": [1, 2, 3], "unicode": "é✓"}
    raw = orjson.dumps(payload)
    query = "x=1&y=%2F&z=a+b&empty=&flag&dup=1&dup=2&enc=%E2%9C%93"
    r = await studio.request(
        "PATCH",
        f"/zen/chats/c%20d/messages?{query}",
        content=raw,
        headers={"content-type": "application/json"},
    )
    echo = echoed(r)
    assert echo["method"] == "PATCH"
    assert echo["raw_path"] == "/chats/c%20d/messages"
    assert echo["query"] == query
    assert echo["json"] == payload
    assert echo["body_length"] == len(raw)
    headers = header_map(echo)
    assert headers["content-length"] == [str(len(raw))]
    assert headers["content-type"] == ["application/json"]


async def test_every_method_is_forwarded(studio: Studio) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        echo = echoed(await studio.request(method, "/zen/things/1", content=b"x"))
        assert echo["method"] == method
    r = await studio.request("HEAD", "/zen/things/1")
    assert r.status_code == 200
    assert r.content == b""
    r = await studio.request("TRACE", "/zen/things/1")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_base_path_of_the_service_is_kept(studio: Studio) -> None:
    echo = echoed(await studio.get("/agents/runs/7?verbose=1"))
    assert echo["path"] == "/orchestrator/runs/7"
    assert echo["query"] == "verbose=1"


async def test_downstream_sees_studio_headers_only(studio: Studio) -> None:
    r = await studio.get(
        "/zen/whoami",
        headers={
            "Cookie": "studio_session=abc",
            "X-User-Id": "spoofed",
            "X-User-Roles": "admin",
            "X-User-Anything": "x",
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
            "Forwarded": "for=6.6.6.6",
            "X-Real-IP": "6.6.6.6",
            "X-CSRF-Token": "browser-csrf-secret",
            "X-Request-ID": "client-req-1",
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "secret",
            "Proxy-Authorization": "Basic eDp5",
            "X-Custom": "kept",
            "Accept": "application/json",
        },
    )
    echo = echoed(r)
    h = header_map(echo)
    expected_auth = base64.b64encode(f"{SERVICE_USER}:{SERVICE_PASSWORD}".encode()).decode()
    assert h["authorization"] == [f"Basic {expected_auth}"]
    assert h["x-request-id"] == ["client-req-1"]
    assert h["x-user-id"] == ["u-admin"]
    assert h["x-user-email"] == ["admin@example.com"]
    assert h["x-user-roles"] == ["admin,editor"]
    assert "x-user-anything" not in h
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    # No PUBLIC_BASE_URL, no trusted proxy: the public origin is unknown, so it is not stated.
    assert "x-forwarded-proto" not in h and "x-forwarded-host" not in h
    assert h["host"] == [studio.fakes.urls["zen"].removeprefix("http://")]
    for absent in (
        "cookie",
        "forwarded",
        "x-real-ip",
        "x-drop-me",
        "proxy-authorization",
        "x-csrf-token",
    ):
        assert absent not in h, absent
    assert h["x-custom"] == ["kept"]
    assert h["accept"] == ["application/json"]
    assert r.headers["x-request-id"] == "client-req-1"


async def test_service_without_auth_sends_no_authorization(studio: Studio) -> None:
    h = header_map(echoed(await studio.get("/noauth/x")))
    assert "authorization" not in h
    assert h["x-user-id"] == ["u-admin"]


async def test_client_never_sees_set_cookie_or_downstream_challenge(studio: Studio) -> None:
    r = await studio.get("/zen/cookie")
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert r.json()["result"] == {"cookie": "set"}
    studio.fakes.zen.set_password("rotated-away")
    r = await studio.get("/zen/anything")
    assert r.status_code == 401
    assert "www-authenticate" not in r.headers
    assert r.json()["error"]["code"] == "DOWNSTREAM_ERROR"


async def test_redirect_location_does_not_leak_internal_address(studio: Studio) -> None:
    r = await studio.get("/agents/redirect")
    assert r.status_code == 302
    assert r.headers["location"] == "/api/v1/agents/echo/landed?x=1"


async def test_no_token_is_401_and_never_sent(studio: Studio) -> None:
    for path in ("/nexus/documents", "/nexus/unlisted", "/zen/x"):
        r = await studio.get(path, who=None)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
        assert r.headers["www-authenticate"] == "Bearer"
    r = await studio.get("/zen/x", headers={"Authorization": "Bearer forged"}, who=None)
    assert r.json()["error"]["code"] == "TOKEN_INVALID"
    assert studio.fakes.nexus.calls() == [] and studio.fakes.zen.calls() == []


async def test_missing_permission_is_403_and_never_sent(studio: Studio) -> None:
    r = await studio.request("POST", "/nexus/documents", who="viewer", content=b"{}")
    assert r.status_code == 403
    assert r.json()["error"] == {"code": "FORBIDDEN", "details": {"permission": "nexus:write"}}
    r = await studio.get("/zen/x", who="nobody")
    assert r.status_code == 403
    r = await studio.get("/ingestion/x", who="viewer")
    assert r.status_code == 403
    assert studio.fakes.nexus.calls() == []
    assert studio.fakes.zen.calls() == []
    assert studio.fakes.ingestion.calls() == []
    # The viewer may read Nexus and chat with Zen.
    assert (await studio.get("/nexus/documents", who="viewer")).status_code == 200
    assert (await studio.request("POST", "/zen/chat", who="viewer")).status_code == 200


async def test_quota_per_user(studio: Studio) -> None:
    for _ in range(2):
        r = await studio.get("/quota/x")
        assert r.status_code == 200
        assert r.headers["ratelimit-limit"] == "2"
    r = await studio.get("/quota/x")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "RATE_LIMITED"
    assert int(r.headers["retry-after"]) >= 1
    assert len(studio.fakes.zen.calls()) == 2


async def test_downstream_401_refreshes_credentials_and_retries_once(studio: Studio) -> None:
    provider = studio.providers["rot"]
    assert isinstance(provider, RotatingProvider)
    studio.fakes.rot.set_password("rotated-1")
    echo = echoed(await studio.get("/rot/x"))
    assert echo["service"] == "rot"
    assert provider.refreshes == 1
    assert studio.fakes.rot.auth_failures == 1
    # A small body is buffered, so a write can be replayed too.
    studio.fakes.rot.set_password("rotated-2")
    echo = echoed(await studio.request("POST", "/rot/y", json={"a": 1}))
    assert echo["json"] == {"a": 1}
    assert provider.refreshes == 2
    # Refreshing again does not help when the service keeps refusing: one retry only.
    provider.cached = provider.cached.__class__(SERVICE_USER, "stale")
    studio.fakes.rot.password = None
    r = await studio.get("/rot/z")
    assert r.status_code == 401
    assert provider.refreshes == 3
    assert studio.fakes.rot.auth_failures == 4


async def test_large_streamed_body_is_not_retried_after_401(studio: Studio) -> None:
    provider = studio.providers["rot"]
    assert isinstance(provider, RotatingProvider)
    studio.fakes.rot.set_password("rotated-3")
    r = await studio.request("PUT", "/rot/big", content=b"x" * (200 * 1024))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "DOWNSTREAM_ERROR"
    assert studio.fakes.rot.auth_failures == 1
    assert len(studio.fakes.rot.calls("/big")) == 1


async def test_credentials_unavailable(studio: Studio) -> None:
    r = await studio.get("/creds/x")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "CREDENTIALS_UNAVAILABLE"
    assert "SSM" not in r.text
    assert studio.fakes.zen.calls() == []
