"""How downstream bodies reach the client: envelope, pass-through, raw routes (CONTRACT §2)."""

from __future__ import annotations

from tests.proxy.conftest import Studio

KEYS = {"success", "message", "error", "result"}


async def test_plain_json_becomes_result(studio: Studio) -> None:
    r = await studio.get("/zen/echo/1")
    body = r.json()
    assert set(body) == KEYS
    assert body["success"] is True and body["error"] is None
    assert body["result"]["path"] == "/echo/1"
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == str(len(r.content))


async def test_already_enveloped_passes_as_is(studio: Studio) -> None:
    r = await studio.get("/zen/enveloped")
    assert r.json() == {
        "success": True,
        "message": "from zen",
        "error": None,
        "result": {"items": [1, 2, 3]},
    }
    r = await studio.get("/zen/enveloped?status=409")
    assert r.status_code == 409
    assert r.json()["error"] == {"code": "DOWNSTREAM_CONFLICT", "details": {"id": 7}}
    assert r.json()["message"] == "conflict in downstream"


async def test_downstream_json_error_becomes_error_envelope(studio: Studio) -> None:
    r = await studio.get("/zen/status/404")
    assert r.status_code == 404
    body = r.json()
    assert set(body) == KEYS
    assert body["success"] is False and body["result"] is None
    assert body["error"] == {
        "code": "DOWNSTREAM_ERROR",
        "details": {"detail": "status 404", "code": 404},
    }
    assert "zen" in body["message"]


async def test_downstream_text_error_becomes_error_envelope(studio: Studio) -> None:
    r = await studio.get("/zen/status/500?type=text")
    assert r.status_code == 500
    assert r.json()["error"] == {"code": "DOWNSTREAM_ERROR", "details": "plain failure 500"}


async def test_envelope_false_routes_are_raw(studio: Studio) -> None:
    r = await studio.get("/nexus/v2/jobs/j-1/progress?since=3")
    body = r.json()
    assert body["path"] == "/v2/jobs/j-1/progress"
    assert body["query"] == "since=3"
    assert "success" not in body
    r = await studio.get("/nexus/status/418")
    assert r.status_code == 418
    assert r.json() == {"detail": "status 418", "code": 418}


async def test_explicit_route_with_envelope(studio: Studio) -> None:
    r = await studio.get("/nexus/enveloped")
    assert r.json()["message"] == "from nexus"


async def test_proxy_errors_are_envelopes_with_request_id(studio: Studio) -> None:
    r = await studio.get("/nexus/unlisted", headers={"X-Request-ID": "abc.123"})
    assert set(r.json()) == KEYS
    assert r.headers["x-request-id"] == "abc.123"
    r = await studio.get("/zen/x", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"
    assert r.json()["result"]["headers"].count(["x-request-id", r.headers["x-request-id"]]) == 1


async def test_head_and_bodyless_answers_pass_through(studio: Studio) -> None:
    r = await studio.request("HEAD", "/zen/json?size=500")
    assert r.status_code == 200
    assert r.content == b""
