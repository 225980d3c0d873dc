"""Local development stays separate from the dev stage and needs no set-up."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.core.config import Settings
from app.credentials.env import EnvCredentialProvider
from app.credentials.factory import build_providers
from app.registry.loader import load_registry
from tests.deploy.cfn import ROOT

LOCAL = "SERVICE_OVERLAY_PATH=config/local.yml"


async def test_the_local_overlay_boots_with_an_empty_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    settings = Settings(_env_file=None, service_overlay_path=Path("config/local.yml"))  # type: ignore[call-arg]
    registry = load_registry(settings, environ={})
    providers = build_providers(registry, settings)
    for name, service in registry.services.items():
        assert service.base_url.host == "127.0.0.1", name
        assert isinstance(providers[name], EnvCredentialProvider), name


@pytest.mark.parametrize(
    ("target", "command"),
    [("run", "studio serve"), ("run-with-fakes", "studio serve"), ("ts-check", "studio openapi")],
)
def test_make_serves_with_the_local_overlay(target: str, command: str) -> None:
    plan = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    uses = [line for line in plan.splitlines() if command in line]
    assert uses and all(LOCAL in line for line in uses), plan
