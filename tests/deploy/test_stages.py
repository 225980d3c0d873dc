"""Every deployed stage boots from what is deployed: the stack's task environment, nothing else.

Each stage's task environment is rendered from the CloudFormation template and the stage's
parameters file (as deployment/ci/deploy.sh passes them); the SSM parameters the task and the
registry read are answered by moto. Settings and the registry are then loaded with exactly that
environment, in a working directory holding what the image holds (config/ and
deployment/config/), and every service must resolve to a non-loopback URL with credentials read
from SSM under the stage's own prefix.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from app.core.aws import reset_shared_ssm_clients
from app.core.config import Settings
from app.credentials.factory import build_providers
from app.credentials.ssm import SSMCredentialProvider
from app.registry.loader import load_registry
from app.registry.schema import BasicAuthSSM
from tests.deploy.cfn import (
    ACCOUNT,
    REGION,
    ROOT,
    Task,
    load_template,
    params_file,
    render_task,
    stages,
)

SERVICES = ("nexus", "zen", "agents", "ingestion")
STAGES = stages(load_template())
BROWSER_ORIGIN = "https://sentinel.centricitywealth.tech"
CHECK = ("check-config",)


@pytest.fixture
def image_workdir(tmp_path: Path) -> Path:
    """A working directory with what the image carries next to the code (see the Dockerfile)."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "deployment" / "config", tmp_path / "deployment" / "config")
    return tmp_path


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        yield session.client("ssm")


def _secret_value(name: str, stage: str) -> str:
    if name == "DATABASE_URL":
        return f"postgresql://studio:pw@studio-db.{stage}.internal:5432/studio"
    if name == "JWT_SECRET_KEY":
        return f"{stage}-jwt-secret-from-ssm-0123456789abcdef0123456789"
    return f"{name.lower()}-from-ssm"


def _task_environment(task: Task, ssm: Any) -> dict[str, str]:
    """The container's environment: plain values, and Secrets fetched from (moto's) SSM."""
    env = dict(task.environment)
    for name, parameter in task.secrets.items():
        ssm.put_parameter(
            Name=parameter, Value=_secret_value(name, task.stage), Type="SecureString"
        )
        env[name] = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    return env


def _put_service_credentials(ssm: Any, stage: str) -> None:
    for service in SERVICES:
        prefix = f"/sentinel/{stage}/{service}"
        ssm.put_parameter(
            Name=f"{prefix}/service-user", Value=f"{service}-{stage}-user", Type="SecureString"
        )
        ssm.put_parameter(
            Name=f"{prefix}/service-password", Value=f"{service}-{stage}-pw", Type="SecureString"
        )


def _settings(env: dict[str, str], **overrides: str) -> Settings:
    with mock.patch.dict(os.environ, env | overrides, clear=True):
        return Settings(_env_file=None)  # type: ignore[call-arg]


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@pytest.mark.parametrize("stage", STAGES)
async def test_stage_boots_from_its_task_environment(
    stage: str, image_workdir: Path, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert params_file(stage).is_file(), f"stage {stage} has no {params_file(stage).name}"
    task = render_task(stage)
    env = _task_environment(task, ssm)
    _put_service_credentials(ssm, stage)
    monkeypatch.chdir(image_workdir)

    settings = _settings(env)
    assert settings.environment == stage
    assert not settings.embedded and not settings.redis_in_process
    overlay = settings.overlay_path
    assert overlay.resolve() == (image_workdir / "deployment" / "config" / f"{stage}.yml")
    assert overlay.is_file(), f"{overlay}: the stage overlay the stack names is not in the image"
    # Whatever ENVIRONMENT the stage runs with, its task meets the bar production enforces.
    _settings(env, ENVIRONMENT="prod")

    registry = load_registry(settings, environ=env)
    assert sorted(registry.services) == sorted(SERVICES)
    providers = build_providers(registry, settings, ssm_client_factory=lambda: ssm)
    for name in SERVICES:
        service = registry.services[name]
        host = service.base_url.host or ""
        assert not _is_loopback(host), f"{stage}: {name} resolves to {service.base_url}"
        auth = service.auth
        assert isinstance(auth, BasicAuthSSM), f"{stage}: {name} does not take SSM credentials"
        assert auth.ssm_prefix == f"/sentinel/{stage}/{name}"
        arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{auth.ssm_prefix}/service-user"
        assert any(fnmatch.fnmatchcase(arn, allowed) for allowed in task.task_role_ssm), (
            f"{stage}: the task role may not read {arn}"
        )
        provider = providers[name]
        assert isinstance(provider, SSMCredentialProvider)
        credentials = await provider.get()
        assert (credentials.username, credentials.password) == (
            f"{name}-{stage}-user",
            f"{name}-{stage}-pw",
        )


@pytest.mark.parametrize("stage", STAGES)
def test_check_config_accepts_exactly_the_task_environment(
    stage: str, image_workdir: Path, ssm: Any
) -> None:
    env = _task_environment(render_task(stage), ssm)
    result = subprocess.run(
        # The console script's own entry point (`python -m app.cli` is a second module object).
        [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())", *CHECK],
        cwd=image_workdir,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"configuration is valid for {stage}" in result.stdout


def test_every_stage_has_its_files_and_nothing_else_does() -> None:
    overlays = {p.stem for p in (ROOT / "deployment" / "config").glob("*.yml")}
    params = {
        p.stem.removeprefix("params-")
        for p in (ROOT / "deployment" / "cloudformation").glob("params-*.json")
    }
    assert overlays == set(STAGES)
    assert params == set(STAGES)
    jenkinsfile = (ROOT / "Jenkinsfile").read_text(encoding="utf-8")
    for stage in STAGES:
        assert f"deployment/ci/deploy.sh {stage} " in jenkinsfile, f"no pipeline deploys {stage}"


def test_browsers_reach_prod_only_from_the_sentinel_origin() -> None:
    prod = json.loads(params_file("prod").read_text(encoding="utf-8"))
    assert prod["CorsAllowOrigins"] == BROWSER_ORIGIN
    for stage in STAGES:
        origins = render_task(stage).environment["CORS_ALLOW_ORIGINS"].split(",")
        for origin in origins:
            assert origin.startswith("https://"), f"{stage}: {origin}"
            assert "example." not in origin, f"{stage}: placeholder origin {origin}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_registry_overlay_can_come_from_ssm_and_is_watched(
    stage: str, image_workdir: Path, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `RegistryOverlayParameter`, the task reads its overlay from SSM (which an operator
    can change without a new image) and watches it; the task role may read it."""
    parameter = f"/sentinel/{stage}/studio/registry-overlay"
    task = render_task(stage, overrides={"RegistryOverlayParameter": parameter})
    env = _task_environment(task, ssm)
    assert "SERVICE_OVERLAY_PATH" not in env
    assert env["SERVICE_OVERLAY_SSM_PARAMETER"] == parameter
    assert float(env["SERVICE_CONFIG_RELOAD_INTERVAL"]) > 0
    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{parameter}"
    assert any(fnmatch.fnmatchcase(arn, allowed) for allowed in task.task_role_ssm)

    overlay = (image_workdir / "deployment" / "config" / f"{stage}.yml").read_text()
    ssm.put_parameter(Name=parameter, Value=overlay, Type="String")
    monkeypatch.chdir(image_workdir)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    settings = _settings(env, AWS_REGION=REGION)
    reset_shared_ssm_clients()  # a client made inside this mock
    try:
        registry = load_registry(settings, environ=env)
    finally:
        reset_shared_ssm_clients()
    assert sorted(registry.services) == sorted(SERVICES)
    # Without the parameter, the image's file, as before.
    assert "SERVICE_OVERLAY_SSM_PARAMETER" not in render_task(stage).environment
