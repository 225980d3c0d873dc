"""`studio routes` and `studio check-config --stage ...` with the real registry files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app import cli
from app.cli.registry import check_registry
from app.core.config import get_settings

ROOT = Path(__file__).resolve().parents[2]
URLS = {
    "NEXUS_URL": "https://nexus.internal",
    "ZEN_URL": "https://zen.internal",
    "AGENTS_URL": "https://agents.internal",
    "INGESTION_URL": "https://ingestion.internal",
}
PROD = {
    "JWT_SECRET_KEY": "p" * 40,
    "DATABASE_URL": "postgresql://db/studio",
    "REDIS_HOST": "redis",
}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    # check-config writes ENVIRONMENT into os.environ; setting it here makes monkeypatch undo that.
    monkeypatch.setenv("ENVIRONMENT", "dev")
    for name in (*URLS, *PROD, "SERVICE_CONFIG_PATH", "SERVICE_OVERLAY_PATH"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def local_overlay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local development's overlay (the dev stage's own needs the stack's URLs)."""
    monkeypatch.setenv("SERVICE_OVERLAY_PATH", "config/local.yml")


@pytest.mark.usefixtures("local_overlay")
def test_routes_lists_every_nexus_route_and_one_row_per_wildcard_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["routes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SERVICE", "MODE", "METHOD", "PATH", "PERMISSION", "ENVELOPE"]
    rows = [line.split() for line in lines[1:]]
    assert len([r for r in rows if r[0] == "nexus"]) == 32
    assert ["nexus", "explicit", "GET", "/v2/jobs/{job_id}/progress", "nexus:read", "no"] in rows
    assert ["nexus", "explicit", "POST", "/search", "nexus:read", "yes"] in rows
    assert ["zen", "wildcard", "ANY", "/{path}", "zen:chat", "yes"] in rows
    wildcard = [r for r in rows if r[2] == "ANY"]
    assert [r[0] for r in wildcard] == ["zen", "agents", "ingestion"]
    assert wildcard[1][4] == "read=agents:read"


@pytest.mark.usefixtures("local_overlay")
def test_routes_of_one_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["routes", "--service", "ingestion"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("ingestion  wildcard  ANY")
    assert cli.main(["routes", "--service", "ghost"]) == 2
    assert "unknown service 'ghost'" in capsys.readouterr().err


@pytest.mark.usefixtures("local_overlay")
def test_routes_reports_a_broken_registry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "services.yaml"
    bad.write_text("services:\n  zen: {mode: wildcard}\n")
    monkeypatch.setenv("SERVICE_CONFIG_PATH", str(bad))
    assert cli.main(["routes"]) == 2
    err = capsys.readouterr().err
    assert f"{bad} (+ config/local.yml): services.zen.base_url: required key" in err


def test_check_config_for_prod_validates_the_registry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {**URLS, **PROD}.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["check-config", "--stage", "prod"]) == 0
    out = capsys.readouterr().out
    assert "service registry is valid: 4 services, 32 routes" in out
    assert "configuration is valid for prod" in out
    assert check_registry in cli.CONFIG_CHECKS


def test_check_config_for_prod_fails_on_a_registry_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {**URLS, **PROD}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ZEN_URL")
    with pytest.raises(SystemExit) as caught:
        cli.main(["check-config", "--stage", "prod"])
    assert caught.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "deployment/config/prod.yml: services.zen.base_url: "
        "environment variable ZEN_URL is not set and has no default"
    )
    assert "configuration is valid" not in captured.out


@pytest.mark.usefixtures("local_overlay")
def test_check_config_for_local_development_needs_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["check-config"]) == 0
    assert "service registry is valid" in capsys.readouterr().out
