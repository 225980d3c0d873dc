"""The proxy's operations in the OpenAPI schema (app/proxy/openapi.py): shapes generated clients
can call, ids, security, and the error codes each operation can really answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from app.proxy import openapi as proxy_openapi
from app.proxy.openapi import operation_id, proxy_errors
from tests.proxy.conftest import Studio

REF = "#/components/schemas/"
OPERATION_ID = re.compile(r"^[a-z]+(\.[a-z][A-Za-z0-9]*)+$")
READ: list[dict[str, list[str]]] = [{"Bearer": []}, {"SessionCookie": []}]
WRITE: list[dict[str, list[str]]] = [{"Bearer": []}, {"SessionCookie": [], "CsrfHeader": []}]
BINARY = {"type": "string", "format": "binary"}


@pytest.fixture
def schema(make_settings: Callable[..., Settings]) -> dict[str, Any]:
    return create_app(make_settings()).openapi()


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method]
    return found


def proxied(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method != "parameters" and op["operationId"].startswith("proxy."):
                yield method, path, op


def media_types(response: dict[str, Any]) -> list[str]:
    return list(response.get("content", {}))


def codes(op: dict[str, Any], status: int) -> set[str]:
    return set(op["responses"][str(status)]["content"]["application/json"]["examples"])


def test_proxied_routes_are_documented(schema: dict[str, Any]) -> None:
    document = operation(schema, "get", "/api/v1/nexus/documents/{document_id}")
    assert document["x-permission"] == "nexus:read"
    assert document["tags"] == ["nexus"]
    assert document["parameters"][0]["name"] == "document_id"
    assert document["operationId"] == "proxy.nexus.getDocument"
    zen = operation(schema, "post", "/api/v1/zen/{path}")
    assert zen["x-permission"] == "zen:chat"
    assert zen["operationId"] == "proxy.zen.post"
    assert operation(schema, "get", "/api/v1/zen/{path}")["operationId"] == "proxy.zen.get"
    assert len(list(proxied(schema))) == 32 + 3 * 5  # Nexus's routes, 3 wildcard services


def test_every_write_has_a_body_per_media_type_with_a_real_schema(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    assert components["ProxyJsonBody"]["type"] == "object"
    assert components["ProxyJsonBody"]["additionalProperties"] is True
    assert components["ProxyUpload"]["properties"]["file"] == {**BINARY, "description": "The file"}
    for method, path, op in proxied(schema):
        if method not in ("post", "put", "patch"):
            assert "requestBody" not in op, (method, path)
            continue
        content = op["requestBody"]["content"]
        assert content == {
            "application/json": {"schema": {"$ref": REF + "ProxyJsonBody"}},
            "multipart/form-data": {"schema": {"$ref": REF + "ProxyUpload"}},
            "application/octet-stream": {"schema": BINARY},
        }, (method, path)


def test_answers_are_listed_in_the_order_a_client_should_read_them(
    schema: dict[str, Any],
) -> None:
    document = operation(schema, "get", "/api/v1/nexus/documents/{document_id}")
    ok = document["responses"]["200"]
    assert ok["content"] == {"application/json": {"schema": {"$ref": REF + "EnvelopeAny"}}}
    progress = operation(schema, "get", "/api/v1/nexus/v2/jobs/{job_id}/progress")
    assert progress["responses"]["200"]["content"] == {"application/json": {"schema": {}}}
    download = operation(schema, "get", "/api/v1/nexus/documents/{document_id}/download")
    assert download["responses"]["200"]["content"] == {
        "application/octet-stream": {"schema": BINARY, "x-stream": True}
    }
    for method in ("get", "post", "put", "patch", "delete"):
        wildcard = operation(schema, method, "/api/v1/agents/{path}")["responses"]
        # Bytes first: a client that cannot know the answer's type reads bytes, never fails.
        assert media_types(wildcard["200"]) == [
            "application/octet-stream",
            "application/json",
            "text/event-stream",
        ]
        content = wildcard["200"]["content"]
        assert content["text/event-stream"]["x-stream"] is True
        assert content["application/json"]["schema"] == {"$ref": REF + "EnvelopeAny"}
        assert wildcard["2XX"]["content"] == content  # 201, 202 ... pass through too
        assert "content" not in wildcard["204"]
    for method, path, op in proxied(schema):
        for status, response in op["responses"].items():
            for media in response.get("content", {}).values():
                assert media["schema"] != {} or path.endswith("/progress"), (method, path, status)


def test_wildcard_path_and_query_string_are_documented(schema: dict[str, Any]) -> None:
    item = schema["paths"]["/api/v1/zen/{path}"]
    assert item["parameters"][0]["name"] == "path"
    assert "%2F" in item["parameters"][0]["description"]
    assert schema["components"]["schemas"]["ProxyQuery"]["additionalProperties"] == {
        "type": "string"
    }
    for method, path, op in proxied(schema):
        query = [p for p in op["parameters"] if p["in"] == "query"]
        assert query == [
            {
                "name": "query",
                "in": "query",
                "required": False,
                "style": "form",
                "explode": True,
                "description": query[0]["description"],
                "schema": {"$ref": REF + "ProxyQuery"},
            }
        ], (method, path)


def test_operation_ids_are_readable_unique_and_stable(schema: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in proxied(schema)]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not OPERATION_ID.match(i)] == []
    assert {
        "proxy.nexus.getDocuments",
        "proxy.nexus.postDocuments",
        "proxy.nexus.getDocumentsStats",
        "proxy.nexus.deleteDocument",
        "proxy.nexus.getDocumentPage",
        "proxy.nexus.getDocumentExtraction",
        "proxy.nexus.getV2JobProgress",
        "proxy.nexus.postJobCancel",
        "proxy.nexus.getBatch",
        "proxy.ingestion.delete",
    } <= set(ids)


@pytest.mark.parametrize(
    ("service", "method", "template", "expected"),
    [
        ("nexus", "GET", "/documents/{document_id}", "proxy.nexus.getDocument"),
        ("nexus", "GET", "/summaries/{id}", "proxy.nexus.getSummary"),
        ("nexus", "GET", "/analysis/{id}", "proxy.nexus.getAnalysisById"),
        ("nexus", "GET", "/batches/{id}/boxes/{n}", "proxy.nexus.getBatchBox"),
        ("nexus", "GET", "/status/{code}", "proxy.nexus.getStatusByCode"),
        ("nexus", "PUT", "/{name}", "proxy.nexus.putByName"),
        ("nexus", "GET", "/", "proxy.nexus.get"),
        ("my-svc_2", "POST", "/a-b/c_d", "proxy.mySvc2.postABCD"),
        ("zen", "PATCH", None, "proxy.zen.patch"),
    ],
)
def test_operation_id_rule(service: str, method: str, template: str | None, expected: str) -> None:
    assert operation_id(service, method, template) == expected
    assert OPERATION_ID.match(expected)


def test_writes_need_the_csrf_header_in_cookie_mode(schema: dict[str, Any]) -> None:
    assert set(schema["components"]["securitySchemes"]) >= {"Bearer", "SessionCookie"}
    for method, path, op in proxied(schema):
        assert op["security"] == (READ if method == "get" else WRITE), (method, path)


def test_each_operation_documents_what_its_stages_can_answer(schema: dict[str, Any]) -> None:
    for method, path, op in proxied(schema):
        explicit = "{path}" not in path
        has_params = explicit and "{" in path
        quota = False  # no route of the default registry has a quota
        expected: dict[int, set[str]] = {}
        for error in proxy_errors(method, parameters=has_params, quota=quota):
            expected.setdefault(error.status_code, set()).add(error.code)
        documented = {
            int(status): codes(op, int(status)) for status in op["responses"] if status[0] in "45"
        }
        assert documented == expected, (method, path)
        for status in documented:
            schema_ref = op["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema_ref == {"$ref": REF + "DownstreamErrorEnvelope"}


def test_error_stages_are_the_proxy_errors() -> None:
    read = {e.code for e in proxy_errors("GET", parameters=False, quota=False)}
    assert read == {
        "HEADERS_TOO_LARGE",
        "UNAUTHORIZED",
        "TOKEN_EXPIRED",
        "TOKEN_INVALID",
        "SESSION_REVOKED",
        "SESSION_EXPIRED",
        "ACCOUNT_DISABLED",
        "DEPENDENCY_UNAVAILABLE",
        "INVALID_PATH",
        "FORBIDDEN",
        "CIRCUIT_OPEN",
        "CREDENTIALS_UNAVAILABLE",
        "UPSTREAM_BUSY",
        "UPSTREAM_UNAVAILABLE",
        "UPSTREAM_TIMEOUT",
    }
    write = {e.code for e in proxy_errors("POST", parameters=True, quota=False)}
    assert write - read == {
        "CSRF_FAILED",
        "ROUTE_NOT_FOUND",
        "PAYLOAD_TOO_LARGE",
        "REQUEST_TIMEOUT",
        "RATE_LIMITED",
    }
    delete = {e.code for e in proxy_errors("DELETE", parameters=False, quota=False)}
    assert delete - read == {"CSRF_FAILED"}  # no body documented: no 408 or 413
    assert "RATE_LIMITED" in {e.code for e in proxy_errors("GET", parameters=False, quota=True)}
    # Never answered by a documented proxy operation: its service and method exist.
    assert not {"SERVICE_NOT_FOUND", "METHOD_NOT_ALLOWED", "NOT_FOUND"} & write
    assert proxy_openapi.WILDCARD_METHODS == ("get", "post", "put", "patch", "delete")


# Each documented (status, code) driven through a proxied route: here when the proxy suite's
# live Studio can cause it cheaply, else by the test named (which drives it through the proxy or
# through the identity and limits every proxied request goes through first).
ELSEWHERE = {
    "TOKEN_EXPIRED": "tests/auth/test_tokens.py",
    "SESSION_REVOKED": "tests/auth/test_session_truth.py",
    "SESSION_EXPIRED": "tests/auth/test_cookie_renewal.py",
    "ACCOUNT_DISABLED": "tests/auth/test_session_truth.py",
    "DEPENDENCY_UNAVAILABLE": "tests/ratelimit/test_http_limits.py",
    "CSRF_FAILED": "tests/auth/test_cookie_mode.py",
    "REQUEST_TIMEOUT": "tests/proxy/test_stalled_uploads.py",
    "UPSTREAM_BUSY": "tests/proxy/test_stalled_uploads.py",
}


async def drive_each_code(studio: Studio) -> dict[str, int]:
    """Cause each cheap refusal through the proxy; the (code, status) each answered with."""
    seen: dict[str, int] = {}

    def note(response: httpx.Response) -> None:
        seen[response.json()["error"]["code"]] = response.status_code

    note(await studio.get("/zen/x", headers={f"x-filler-{i}": "v" * 200 for i in range(100)}))
    note(await studio.get("/zen/x", who=None))
    note(await studio.get("/zen/x", who="not-a-token"))
    note(await studio.get("/zen/..%2Fadmin"))
    note(await studio.get("/nexus/documents/"))  # `{document_id}` empty: no route
    note(await studio.get("/nexus/documents/stats", who="viewer"))
    for _ in range(3):
        last = await studio.get("/quota/x")
    note(last)
    note(await studio.request("POST", "/small/upload", content=b"x" * (1024 * 1024 + 1)))
    note(await studio.get("/dead/x"))
    for _ in range(3):
        last = await studio.get("/dead/x")
    note(last)
    note(await studio.get("/slow/hang"))
    note(await studio.get("/creds/x"))
    return seen


async def test_each_documented_code_is_answered_by_the_proxy(studio: Studio) -> None:
    documented: dict[str, int] = {
        error.code: error.status_code
        for method in ("GET", "POST", "DELETE")
        for error in proxy_errors(method, parameters=True, quota=True)
    }
    seen = await drive_each_code(studio)
    assert {code: documented[code] for code in seen} == seen  # status and code as documented
    assert set(seen) | set(ELSEWHERE) == set(documented)
    assert not set(seen) & set(ELSEWHERE)
    for code, where in ELSEWHERE.items():
        assert code in Path(where).read_text(), (code, where)
