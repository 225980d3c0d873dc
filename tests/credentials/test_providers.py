"""The env and none providers, and one provider per service from the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.credentials.base import BasicCredentials, CredentialProvider
from app.credentials.env import EnvCredentialProvider
from app.credentials.errors import CredentialsUnavailable
from app.credentials.factory import build_providers
from app.credentials.none import NoCredentialProvider
from app.credentials.ssm import SSMCredentialProvider
from app.registry.loader import load_registry

ROOT = Path(__file__).resolve().parents[2]


async def test_env_provider_reads_the_named_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_USER", "alice")
    monkeypatch.setenv("T_PASS", "pw")
    p = EnvCredentialProvider("T_USER", "T_PASS")
    assert await p.get() == BasicCredentials("alice", "pw")
    monkeypatch.setenv("T_PASS", "pw2")
    assert await p.refresh() == BasicCredentials("alice", "pw2")


@pytest.mark.parametrize("environ", [{}, {"U": "alice"}, {"U": "alice", "P": ""}, {"P": "pw"}])
async def test_env_provider_without_a_variable_is_unavailable(environ: dict[str, str]) -> None:
    with pytest.raises(CredentialsUnavailable) as caught:
        await EnvCredentialProvider("U", "P", environ).get()
    assert str(caught.value) == "Upstream credentials are unavailable"


async def test_none_provider_gives_none() -> None:
    p: CredentialProvider = NoCredentialProvider()
    assert await p.get() is None
    assert await p.refresh() is None


def settings_for(stage: str) -> Settings:
    extra: dict[str, Any] = {}
    if stage != "dev":
        extra = {"jwt_secret_key": "p" * 40, "database_url": "postgresql://d/s", "redis_host": "r"}
    return Settings(_env_file=None, environment=stage, ssm_cache_ttl=42, **extra)


def test_local_providers_use_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    settings = settings_for("dev").model_copy(
        update={"service_overlay_path": Path("config/local.yml")}
    )
    providers = build_providers(load_registry(settings, environ={}), settings)
    assert set(providers) == {"nexus", "zen", "agents", "ingestion"}
    nexus = providers["nexus"]
    assert isinstance(nexus, EnvCredentialProvider)
    assert (nexus.username_env, nexus.password_env) == (
        "NEXUS_SERVICE_USER",
        "NEXUS_SERVICE_PASSWORD",
    )


def test_prod_providers_use_ssm_and_build_without_touching_aws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    settings = settings_for("prod")
    urls = {f"{n}_URL": f"https://{n.lower()}" for n in ("NEXUS", "ZEN", "AGENTS", "INGESTION")}
    providers = build_providers(load_registry(settings, environ=urls), settings)
    for name, p in providers.items():
        assert isinstance(p, SSMCredentialProvider)
        assert p.ssm_prefix == f"/sentinel/prod/{name}"
        assert p.names[1] == f"/sentinel/prod/{name}/service-password"
        assert p.reads == 0


def test_services_sharing_a_prefix_share_a_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(
        """\
services:
  a: {base_url: "http://a", mode: wildcard, permissions: {read: a, write: a},
      auth: {type: basic, ssm_prefix: /shared}}
  b: {base_url: "http://b", mode: wildcard, permissions: {read: b, write: b},
      auth: {type: basic, ssm_prefix: /shared}}
  c: {base_url: "http://c", mode: wildcard, permissions: {read: c, write: c}}
"""
    )
    settings = Settings(_env_file=None, service_config_path=Path("s.yaml"))
    providers = build_providers(load_registry(settings, environ={}), settings)
    assert providers["a"] is providers["b"]
    assert isinstance(providers["c"], NoCredentialProvider)
