"""The proxy's routes in the OpenAPI schema (app/proxy/openapi.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.core.config import Settings
from app.main import create_app


@pytest.fixture
def schema(make_settings: Callable[..., Settings]) -> dict[str, Any]:
    return create_app(make_settings()).openapi()


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method]
    return found


def json_schema(response: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = response["content"]["application/json"]["schema"]
    return found


def test_proxied_routes_are_documented(schema: dict[str, Any]) -> None:
    document = operation(schema, "get", "/api/v1/nexus/documents/{document_id}")
    assert document["x-permission"] == "nexus:read"
    assert document["tags"] == ["nexus"]
    assert document["parameters"][0]["name"] == "document_id"
    assert {"400", "401", "403", "404", "502", "503", "504"} <= set(document["responses"])
    progress = operation(schema, "get", "/api/v1/nexus/v2/jobs/{job_id}/progress")
    assert json_schema(progress["responses"]["200"]) == {}  # envelope: false, raw JSON
    zen = operation(schema, "post", "/api/v1/zen/{path}")
    assert zen["x-permission"] == "zen:chat"
    assert "text/event-stream" in zen["responses"]["200"]["content"]
    assert zen["security"] == [{"Bearer": []}, {"SessionCookie": []}]
    ids = [
        op["operationId"]
        for item in schema["paths"].values()
        for key, op in item.items()
        if key != "parameters"
    ]
    assert len(ids) == len(set(ids))
