"""The operator commands run in-process through `app.cli.main`: output and exit codes."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import cli
from app.cli.config_reference import render
from app.core.config import get_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ENVIRONMENT", "dev")  # check-config writes it; monkeypatch undoes that
    monkeypatch.setenv("SERVICE_OVERLAY_PATH", "config/local.yml")
    for name in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "JWT_SECRET_KEY", "APP_PORT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_routes_prints_a_table_of_every_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["routes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["SERVICE", "MODE"]
    assert {line.split()[0] for line in lines[1:]} == {"nexus", "zen", "agents", "ingestion"}


def test_routes_of_an_unknown_service_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["routes", "--service", "ghost"]) == 2
    assert "unknown service 'ghost'" in capsys.readouterr().err


def test_check_config_accepts_the_dev_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("service registry is valid: 4 services")
    assert lines[-1] == "configuration is valid for dev"


def test_check_config_refuses_prod_without_its_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["check-config", "--stage", "prod"])
    assert exited.value.code == 2
    assert "JWT_SECRET_KEY" in capsys.readouterr().err


def test_openapi_writes_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["openapi"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["openapi"].startswith("3.")
    assert any(path.endswith("/auth/login") for path in schema["paths"])


def test_config_reference_check_passes_on_the_committed_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["config-reference", "--check", "--output", "docs/CONFIGURATION.md"]) == 0
    assert capsys.readouterr().out == ""


def test_config_reference_check_fails_on_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "CONFIGURATION.md"
    stale.write_text(render().replace("REDIS_HOST", "REDIS_HOSTNAME"), encoding="utf-8")
    assert cli.main(["config-reference", "--check", "--output", str(stale)]) == 1
    assert "is out of date" in capsys.readouterr().out
    assert cli.main(["config-reference", "--output", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == render()


def test_hint_names_the_address_and_the_embedded_stand_ins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["hint"]) == 0
    out = capsys.readouterr().out
    settings = get_settings()
    assert f"http://{settings.app_host}:{settings.app_port}/health" in out
    assert "Embedded mode: SQLite at" in out
    assert "studio create-admin" in out


def test_reload_without_a_pid_file_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PID_FILE", str(tmp_path / "studio.pid"))
    assert cli.main(["reload"]) == 1
    assert "studio.pid is missing" in capsys.readouterr().err


def test_reload_signals_the_process_in_the_pid_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    heard: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: heard.append(signum))
    try:
        pid_file = tmp_path / "studio.pid"
        pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
        monkeypatch.setenv("PID_FILE", str(pid_file))
        assert cli.main(["reload"]) == 0
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert heard == [signal.SIGHUP]
    assert f"sent SIGHUP to {os.getpid()}" in capsys.readouterr().out


def test_reload_of_a_stale_pid_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    # above the kernel's highest process id: no process has it, none can get it meanwhile
    stale = int(Path("/proc/sys/kernel/pid_max").read_text(encoding="ascii")) + 1
    assert cli.main(["reload", "--pid", str(stale)]) == 1
    assert f"no process {stale}" in capsys.readouterr().err


def test_migrate_brings_an_empty_database_to_the_newest_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'studio.db'}")
    assert cli.main(["migrate"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("database at revision ")
    assert cli.main(["migrate"]) == 0  # idempotent
    assert capsys.readouterr().out == first
