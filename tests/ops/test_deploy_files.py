"""The deployment files say what operators rely on (they are linted by `make lint-deploy`)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]


def test_jenkinsfile_has_the_pipeline_stages_in_order() -> None:
    text = (ROOT / "Jenkinsfile").read_text()
    stages = re.findall(r"stage\('([^']+)'\)", text)
    assert stages == [
        "Checks",
        "Mutation",
        "Build, scan and push image",
        "Deploy to dev",
        "Approve production",
        "Deploy to prod",
    ]
    assert "branch 'dev'" in text.split("stage('Deploy to dev')")[1].split("stage(")[0]
    assert "branch 'main'" in text.split("stage('Deploy to prod')")[1]
    assert "make lint" in text and "test-with-services.sh" in text


def test_dockerfile_runtime_is_locked_non_root_and_healthchecked() -> None:
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert froms[0] == "ghcr.io/astral-sh/uv:0.13.9"
    assert "python:3.13.3-slim" in froms
    assert "uv sync --frozen --no-dev" in text
    assert re.search(r"^USER 1000:1000$", text, flags=re.M)
    assert "useradd --system --uid" in text and "studio" in text
    assert re.search(r"HEALTHCHECK --interval=30s --timeout=10s .*--retries=3", text)
    assert "curl" not in text.split("HEALTHCHECK")[1].split("\n")[1]
    assert "EXPOSE 8000" in text


def test_compose_waits_for_healthy_dependencies() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "studio", "fakes"} <= set(services)
    for name in ("postgres", "redis", "fakes"):
        assert "healthcheck" in services[name] or "healthcheck" in compose.get("x-fake", {})
    depends = services["studio"]["depends_on"]
    assert all(depends[d]["condition"] == "service_healthy" for d in ("postgres", "redis", "fakes"))


def test_cloudformation_runs_the_container_with_secrets_from_ssm() -> None:
    template = load_template()  # every short-form intrinsic function the template uses
    resources = template["Resources"]
    container = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert {s["Name"] for s in container["Secrets"]} == {"DATABASE_URL", "JWT_SECRET_KEY"}
    assert container["HealthCheck"]["Command"][0] == "CMD"
    assert resources["ScalableTarget"]["Properties"]["MinCapacity"]
    assert resources["Service"]["Properties"]["LaunchType"] == "FARGATE"
