"""Settings: defaults, parsing, and production refusing each unsafe value."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.config import Settings

GOOD_SECRET = "s" * 40


def prod(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "prod",
        "jwt_secret_key": GOOD_SECRET,
        "database_url": "postgresql://db/studio",
        "redis_host": "redis",
        "cors_allow_origins": "https://app.example.com",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_are_the_documented_ones() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.app_port == 8000
    assert s.api_prefix == "/api/v1"
    assert s.redis_max_connections == 10
    assert s.jwt_algorithm == "HS256"
    assert s.embedded and s.sqlalchemy_url.startswith("sqlite+aiosqlite:///")


def test_valid_production_settings() -> None:
    s = prod()
    assert not s.show_docs
    assert s.json_logs
    assert s.sqlalchemy_url == "postgresql+asyncpg://db/studio"
    assert s.cors_allow_origins == ["https://app.example.com"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_secret_key": None}, "JWT_SECRET_KEY is required"),
        ({"jwt_secret_key": "short"}, "at least 32 bytes"),
        ({"cors_allow_origins": "*"}, "not '*'"),
        ({"docs_enabled": True}, "/docs is dev only"),
        ({"database_url": None}, "DATABASE_URL is required"),
        ({"redis_host": None}, "REDIS_HOST or REDIS_URL"),
    ],
)
def test_production_refuses_unsafe_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        prod(**overrides)


def test_csv_and_prefix_parsing() -> None:
    s = Settings(_env_file=None, trusted_proxies="10.0.0.0/8, 127.0.0.1", api_prefix="api/v2/")  # type: ignore[call-arg]
    assert s.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    assert s.api_prefix == "/api/v2"
    with pytest.raises(ValidationError, match="not an IP address"):
        Settings(_env_file=None, trusted_proxies="nonsense")  # type: ignore[call-arg]


def test_env_files_are_layered(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "base.env").write_text("APP_PORT=9000\nLOG_LEVEL=DEBUG\n")
    (tmp_path / "local.env").write_text("APP_PORT=9100\n")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    s = Settings(_env_file=(tmp_path / "base.env", tmp_path / "local.env"))  # type: ignore[call-arg]
    assert s.app_port == 9100  # the later file wins
    assert s.log_level == "WARNING"  # a real environment variable wins over all


def test_cli_refuses_to_start_with_a_clear_message(tmp_path: Any) -> None:
    env = {"ENVIRONMENT": "prod", "JWT_SECRET_KEY": "short", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "check-config"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "JWT_SECRET_KEY must be at least 32 bytes" in result.stderr
    assert "short" not in result.stderr.replace("JWT_SECRET_KEY must", "")
    assert "Traceback" not in result.stderr
