"""The OpenAPI schema: envelopes as named generics, documented errors, security;
`studio openapi` writes it in any stage."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.core.config import Settings, get_settings
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


def test_responses_are_named_envelopes(schema: dict[str, Any]) -> None:
    me = operation(schema, "get", "/api/v1/auth/me")
    assert json_schema(me["responses"]["200"]) == {"$ref": REF + "EnvelopeUserRead"}
    envelope = schema["components"]["schemas"]["EnvelopeUserRead"]
    assert set(envelope["properties"]) == {"success", "message", "error", "result"}
    assert {"$ref": REF + "UserRead"} in envelope["properties"]["result"]["anyOf"]
    login = operation(schema, "post", "/api/v1/auth/login")
    assert json_schema(login["responses"]["200"]) == {
        "$ref": REF + "EnvelopeTokenPairOrCookieSession"
    }
    roles = operation(schema, "get", "/api/v1/admin/roles")
    assert json_schema(roles["responses"]["200"]) == {"$ref": REF + "EnvelopeListRoleRead"}
    assert not [name for name in schema["components"]["schemas"] if name.startswith("Envelope_")]


def test_errors_are_documented_with_their_codes(schema: dict[str, Any]) -> None:
    me = operation(schema, "get", "/api/v1/auth/me")
    unauthorized = me["responses"]["401"]
    assert json_schema(unauthorized) == {"$ref": REF + "ErrorEnvelope"}
    examples = unauthorized["content"]["application/json"]["examples"]
    assert {"UNAUTHORIZED", "TOKEN_EXPIRED", "TOKEN_INVALID", "SESSION_REVOKED"} <= set(examples)
    assert examples["TOKEN_EXPIRED"]["value"] == {
        "success": False,
        "message": "Token has expired",
        "error": {"code": "TOKEN_EXPIRED", "details": None},
        "result": None,
    }
    assert "`TOKEN_EXPIRED`" in unauthorized["description"]
    register = operation(schema, "post", "/api/v1/auth/register")
    assert {"409", "422", "429", "503"} <= set(register["responses"])
    assert "Retry-After" in register["responses"]["429"]["headers"]
    # 422 is the envelope, not FastAPI's HTTPValidationError.
    assert json_schema(register["responses"]["422"]) == {"$ref": REF + "ErrorEnvelope"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    logout = operation(schema, "post", "/api/v1/auth/logout")
    forbidden = logout["responses"]["403"]["content"]["application/json"]["examples"]
    assert "CSRF_FAILED" in forbidden
    users = operation(schema, "get", "/api/v1/admin/users")
    assert {"401", "403", "503"} <= set(users["responses"])
    token = operation(schema, "post", "/api/v1/auth/token")
    assert json_schema(token["responses"]["400"]) == {"$ref": REF + "OAuthError"}


def test_security_schemes_and_tags(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["Bearer"]["type"] == "oauth2"
    assert schemes["Bearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["SessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "studio_session",
        "description": schemes["SessionCookie"]["description"],
    }
    me = operation(schema, "get", "/api/v1/auth/me")
    assert me["security"] == [{"Bearer": []}, {"SessionCookie": []}]
    assert "security" not in operation(schema, "post", "/api/v1/auth/login")
    tags = {tag["name"] for tag in schema["tags"]}
    assert {"auth", "admin", "discovery", "dashboard", "health", "nexus", "zen"} <= tags
    login = schema["components"]["schemas"]["LoginRequest"]
    assert login["properties"]["mode"]["enum"] == ["bearer", "cookie"]


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
