"""The OpenAPI schema: envelopes as named generics, documented errors, security;
`studio openapi` writes it in any stage."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.core.config import Settings, get_settings
from app.core.openapi import READ_SECURITY, WRITE_SECURITY
from app.main import create_app
from tests.conftest import ROOT, TEST_SECRET

REF = "#/components/schemas/"


@pytest.fixture
def schema(make_settings: Callable[..., Settings]) -> dict[str, Any]:
    return create_app(make_settings()).openapi()


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method]
    return found


def json_schema(response: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = response["content"]["application/json"]["schema"]
    return found


def examples_of(response: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = response["content"]["application/json"].get("examples", {})
    return found


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "patch", "delete", "head", "options"):
                yield method, path, op


def codes(op: dict[str, Any], status: int) -> set[str]:
    return set(examples_of(op["responses"][str(status)]))


def test_responses_are_named_envelopes(schema: dict[str, Any]) -> None:
    me = operation(schema, "get", "/api/v1/auth/me")
    assert json_schema(me["responses"]["200"]) == {"$ref": REF + "EnvelopeUserRead"}
    envelope = schema["components"]["schemas"]["EnvelopeUserRead"]
    assert set(envelope["properties"]) == {"success", "message", "error", "result"}
    assert envelope["properties"]["result"] == {"$ref": REF + "UserRead"}
    login = operation(schema, "post", "/api/v1/auth/login")
    assert json_schema(login["responses"]["200"]) == {
        "$ref": REF + "EnvelopeTokenPairOrCookieSession"
    }
    roles = operation(schema, "get", "/api/v1/admin/roles")
    assert json_schema(roles["responses"]["200"]) == {"$ref": REF + "EnvelopeListRoleRead"}
    assert not [name for name in schema["components"]["schemas"] if name.startswith("Envelope_")]


def test_envelopes_require_every_field_and_fix_success(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    envelopes = [name for name in components if name.startswith("Envelope")]
    assert len(envelopes) >= 10
    for name in [*envelopes, "ErrorEnvelope"]:
        body = components[name]
        assert set(body["required"]) == {"success", "message", "error", "result"}, name
    for name in envelopes:
        assert components[name]["properties"]["success"]["const"] is True, name
        assert components[name]["properties"]["error"]["type"] == "null", name
    error = components["ErrorEnvelope"]
    assert error["properties"]["success"]["const"] is False
    assert error["properties"]["result"]["type"] == "null"
    assert set(components["ErrorInfo"]["required"]) == {"code", "details"}
    # What Studio sends always carries every field: a client never tests for an absent key.
    assert set(components["UserRead"]["required"]) >= {"last_login_at", "full_name", "roles"}
    assert set(components["TokenPair"]["required"]) >= {"token_type", "user"}


def test_error_codes_are_an_enum(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    assert components["ErrorInfo"]["properties"]["code"] == {"$ref": REF + "ErrorCode"}
    enum = set(components["ErrorCode"]["enum"])
    assert {"TOKEN_EXPIRED", "CSRF_FAILED", "HEADERS_TOO_LARGE", "DOWNSTREAM_ERROR"} <= enum
    assert {"INTERNAL_ERROR", "VALIDATION_ERROR", "UPSTREAM_BUSY", "NOT_FOUND"} <= enum
    documented = {
        code
        for _, _, op in operations(schema)
        for status, response in op["responses"].items()
        if status >= "400" and status != "default"
        for code in examples_of(response)
        if code.isupper()
    }
    assert documented <= enum
    # A downstream's own envelope may carry any code: a schema of its own for the proxy.
    downstream = components["DownstreamErrorInfo"]["properties"]["code"]
    assert downstream["type"] == "string"


def test_examples_are_real_answers(schema: dict[str, Any]) -> None:
    for method, path, op in operations(schema):
        for status, response in op["responses"].items():
            media = response.get("content", {}).get("application/json", {})
            for example in media.get("examples", {}).values():
                value = example["value"]
                if status.startswith("2"):
                    assert value.get("error") is None, (method, path)
                elif "success" in value:
                    assert value["success"] is False and value["result"] is None, (method, path)
                    assert (
                        value["error"]["code"]
                        in schema["components"]["schemas"]["ErrorCode"]["enum"]
                    )
    register = operation(schema, "post", "/api/v1/auth/register")
    invalid = examples_of(register["responses"]["422"])["VALIDATION_ERROR"]["value"]
    assert invalid["error"]["details"] == [
        {"loc": ["body", "email"], "msg": "Field required", "type": "missing"}
    ]


def test_each_operation_lists_only_its_own_codes(schema: dict[str, Any]) -> None:
    me = operation(schema, "get", "/api/v1/auth/me")
    assert codes(me, 401) == {
        "UNAUTHORIZED",
        "TOKEN_EXPIRED",
        "TOKEN_INVALID",
        "SESSION_REVOKED",
        "SESSION_EXPIRED",
    }
    assert codes(me, 503) == {"DEPENDENCY_UNAVAILABLE"}
    assert codes(me, 403) == {"ACCOUNT_DISABLED"}  # a read: no CSRF
    assert "422" not in me["responses"] and "413" not in me["responses"]
    assert examples_of(me["responses"]["401"])["TOKEN_EXPIRED"]["value"] == {
        "success": False,
        "message": "Token has expired",
        "error": {"code": "TOKEN_EXPIRED", "details": None},
        "result": None,
    }
    assert "`TOKEN_EXPIRED`" in me["responses"]["401"]["description"]
    login = operation(schema, "post", "/api/v1/auth/login")
    assert codes(login, 401) == {"INVALID_CREDENTIALS"}
    assert codes(login, 403) == {"ACCOUNT_DISABLED", "CSRF_FAILED"}
    refresh = operation(schema, "post", "/api/v1/auth/refresh")
    assert "TOKEN_REUSED" in codes(refresh, 401)
    logout = operation(schema, "post", "/api/v1/auth/logout")
    assert "CSRF_FAILED" in codes(logout, 403)
    assert "SESSION_EXPIRED" not in codes(logout, 401)  # a cookie past its lifetime logs out
    register = operation(schema, "post", "/api/v1/auth/register")
    assert codes(register, 409) == {"EMAIL_TAKEN"}
    assert codes(register, 413) == {"PAYLOAD_TOO_LARGE"}
    assert "Retry-After" in register["responses"]["429"]["headers"]
    assert "RateLimit-Remaining" in register["responses"]["201"]["headers"]
    assert json_schema(register["responses"]["422"]) == {"$ref": REF + "ErrorEnvelope"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    users = operation(schema, "get", "/api/v1/admin/users")
    assert codes(users, 403) == {"FORBIDDEN", "ACCOUNT_DISABLED"}
    assert "404" not in users["responses"]
    health = operation(schema, "get", "/api/v1/discovery/services/{name}/health")
    assert codes(health, 404) == {"SERVICE_NOT_FOUND"}
    assert "422" not in health["responses"]  # any name is a valid one to ask for
    for method, path, op in operations(schema):
        if not op["operationId"].startswith("proxy"):
            assert "431" in op["responses"], (method, path)  # the edge's header limit


def test_token_is_rfc6749(schema: dict[str, Any]) -> None:
    token = operation(schema, "post", "/api/v1/auth/token")
    assert json_schema(token["responses"]["400"]) == {"$ref": REF + "OAuthError"}
    assert set(examples_of(token["responses"]["400"])) == {
        "invalid_request",
        "unsupported_grant_type",
        "invalid_grant",
    }
    assert "security" not in token
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form == {"$ref": REF + "TokenForm"}


def test_security_schemes_and_tags(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {"Bearer", "RefreshToken", "SessionCookie", "CsrfHeader"}
    assert schemes["Bearer"]["type"] == "oauth2"
    assert schemes["Bearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["RefreshToken"]["type"] == "http"
    assert schemes["RefreshToken"]["scheme"] == "bearer"
    assert schemes["SessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "studio_session",
        "description": schemes["SessionCookie"]["description"],
    }
    assert {k: v for k, v in schemes["CsrfHeader"].items() if k != "description"} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
    }
    me = operation(schema, "get", "/api/v1/auth/me")
    assert me["security"] == READ_SECURITY == [{"Bearer": []}, {"SessionCookie": []}]
    for method, path in (("post", "/auth/logout"), ("patch", "/admin/users/{user_id}")):
        assert operation(schema, method, f"/api/v1{path}")["security"] == WRITE_SECURITY
    assert WRITE_SECURITY == [{"Bearer": []}, {"SessionCookie": [], "CsrfHeader": []}]
    refresh = operation(schema, "post", "/api/v1/auth/refresh")
    assert refresh["security"] == [{"RefreshToken": []}]
    for path in ("/auth/login", "/auth/register", "/auth/token", "/health"):
        assert "security" not in operation(
            schema, (path == "/health" and "get") or "post", f"/api/v1{path}"
        )
    for method, path, op in operations(schema):
        used = {name for requirement in op.get("security", []) for name in requirement}
        assert "RefreshToken" not in used or path.endswith("/auth/refresh"), (method, path)
    tags = {tag["name"] for tag in schema["tags"]}
    assert {"auth", "admin", "discovery", "dashboard", "health", "nexus", "zen"} <= tags
    for method, path, op in operations(schema):
        assert op.get("tags"), (method, path)
    login = schema["components"]["schemas"]["LoginRequest"]
    assert login["properties"]["mode"]["enum"] == ["bearer", "cookie"]


# camelCase segments; digits after the first letter (`proxy.nexus.getV2JobProgress`).
OPERATION_ID = re.compile(r"^[a-z]+(\.[a-z][A-Za-z0-9]*)+$")


def test_operation_ids_are_readable_and_unique(schema: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(schema)]
    assert len(ids) == len(set(ids))
    own = [i for i in ids if not i.startswith("proxy")]
    assert [i for i in own if not OPERATION_ID.match(i)] == []
    # The proxy's operations follow the rule once they are named `proxy.<service>.<op>`.
    assert [i for i in ids if "." in i and not OPERATION_ID.match(i)] == []
    assert {
        "auth.login",
        "auth.register",
        "auth.token",
        "auth.refresh",
        "auth.logout",
        "auth.me",
        "auth.csrf",
        "auth.sessions.list",
        "auth.sessions.delete",
        "auth.password.change",
        "admin.users.list",
        "admin.users.update",
        "admin.roles.list",
        "admin.roles.create",
        "admin.roles.update",
        "admin.audit.list",
        "discovery.services.list",
        "discovery.services.health",
        "dashboard.get",
        "health.live",
        "health.ready",
        "metrics.get",
    } <= set(own)


def test_dashboard_and_health_are_typed(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    dashboard = operation(schema, "get", "/api/v1/dashboard")
    assert json_schema(dashboard["responses"]["200"]) == {"$ref": REF + "EnvelopeDashboardPage"}
    slot = components["DashboardPage"]["properties"]["sources"]["additionalProperties"]
    assert slot == {"anyOf": [{"$ref": REF + "SourceOk"}, {"$ref": REF + "SourceFailed"}]}
    ready = operation(schema, "get", "/api/v1/health")
    assert json_schema(ready["responses"]["200"]) == {"$ref": REF + "EnvelopeReadiness"}


@pytest.fixture
def staging_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no env files of a developer's checkout
    for name, value in {
        "ENVIRONMENT": "staging",
        "JWT_SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": "postgresql://studio@127.0.0.1:5432/studio",
        "REDIS_HOST": "127.0.0.1",
        "LOG_DIR": str(tmp_path / "logs"),
        "SERVICE_CONFIG_PATH": str(ROOT / "config" / "services.yaml"),
        "SERVICE_OVERLAY_PATH": str(ROOT / "config" / "local.yml"),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("staging_env")
def test_cli_writes_the_schema_outside_dev(tmp_path: Path) -> None:
    target = tmp_path / "out" / "openapi.json"
    assert cli.main(["openapi", "--output", str(target)]) == 0
    written = json.loads(target.read_text())
    assert written["info"]["title"] == "Studio"
    assert "/api/v1/auth/me" in written["paths"]
    # Outside dev the session cookie carries the __Host- prefix.
    assert written["components"]["securitySchemes"]["SessionCookie"]["name"] == (
        "__Host-studio_session"
    )


@pytest.mark.usefixtures("staging_env")
def test_cli_prints_the_schema_without_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["openapi"]) == 0
    assert json.loads(capsys.readouterr().out)["openapi"].startswith("3.")
