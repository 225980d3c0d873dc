"""What an operator reads: make's verbs, the CLI's commands, every setting documented."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from app.cli import COMMANDS, _load_domain_commands
from app.cli.config_reference import OUTPUT, render
from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
STUDIO = Path(sys.executable).parent / "studio"


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def all_commands() -> set[str]:
    _load_domain_commands()
    return set(COMMANDS)


def test_make_without_a_target_lists_the_verbs() -> None:
    done = run("make", "--no-print-directory")
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"^  ([a-z][a-z-]*) ", done.stdout, re.M))
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    assert {"help", "install", "run", "test", "lint", "lint-deploy", "bench"} <= listed
    assert listed == targets  # every verb has a `##` line


@pytest.mark.parametrize("argv", [(STUDIO,), (sys.executable, "-m", "app.cli")])
def test_help_lists_every_command(argv: tuple[str | Path, ...]) -> None:
    done = run(*argv, "--help")
    assert done.returncode == 0, done.stderr
    commands = all_commands()
    assert {"serve", "migrate", "check-config", "create-admin", "audit", "routes"} <= commands
    assert {"openapi", "config-reference"} <= commands
    for name in commands:
        assert re.search(rf"^\s+{re.escape(name)}\s", done.stdout, re.M), name


def test_version_comes_from_the_package_metadata() -> None:
    done = run(STUDIO, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"studio {version('studio')}"


def test_every_setting_is_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, re.M))
    missing = {name.upper() for name in Settings.model_fields} - named
    assert not missing, f".env.example lacks {sorted(missing)}"
    assert named <= {name.upper() for name in Settings.model_fields}  # and nothing stale


def test_every_setting_has_a_meaning() -> None:
    undocumented = [name for name, f in Settings.model_fields.items() if not f.description]
    assert not undocumented


def test_the_committed_configuration_reference_is_current() -> None:
    committed = (ROOT / OUTPUT).read_text(encoding="utf-8")
    assert committed == render(), "run: studio config-reference --output docs/CONFIGURATION.md"
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in committed
    done = run(STUDIO, "config-reference", "--output", OUTPUT, "--check")
    assert done.returncode == 0, done.stdout
