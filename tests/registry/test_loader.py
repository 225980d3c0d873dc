"""The registry loader: real files, overlay merge, interpolation, and every kind of mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.registry.loader import RegistryError, interpolation_env, load_registry
from app.registry.schema import BasicAuthEnv, BasicAuthSSM, RegistryConfig

ROOT = Path(__file__).resolve().parents[2]
URLS = {
    "NEXUS_URL": "https://nexus.internal",
    "ZEN_URL": "https://zen.internal",
    "AGENTS_URL": "https://agents.internal",
    "INGESTION_URL": "https://ingestion.internal",
}
LOCAL = Path("config/local.yml")
PROD = {
    "jwt_secret_key": "p" * 40,
    "database_url": "postgresql://db/studio",
    "redis_host": "redis",
}

BASE = """\
services:
  nexus:
    base_url: ${NEXUS_URL:-http://127.0.0.1:9101}
    mode: explicit
    description: Document AI
    auth: {type: basic, ssm_prefix: "/sentinel/${ENVIRONMENT}/nexus"}
    timeouts: {connect: 5, read: 60}
    permissions: {read: "nexus:read", write: "nexus:write"}
    routes:
      - {method: GET, path: "/documents/{document_id}"}
      - {method: GET, path: "/documents/stats"}
  zen:
    base_url: http://127.0.0.1:9102
    mode: wildcard
    permissions: {read: "zen:chat", write: "zen:chat"}
dashboard:
  sources:
    - {key: documents, service: nexus, path: /documents/stats}
"""


def real_settings(environment: str = "dev", **overrides: Any) -> Settings:
    values: dict[str, Any] = {"environment": environment, **(PROD if environment != "dev" else {})}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the default paths are relative to the working directory


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a base file (and optionally an overlay) and return settings pointing at them."""
    monkeypatch.chdir(tmp_path)  # so no default stage overlay is found by accident

    def build(base: str, overlay: str | None = None, environment: str = "dev") -> Settings:
        (tmp_path / "services.yaml").write_text(base)
        overlay_path = None
        if overlay is not None:
            overlay_path = tmp_path / f"{environment}.yml"
            overlay_path.write_text(overlay)
        return real_settings(
            environment,
            service_config_path=Path("services.yaml"),
            service_overlay_path=overlay_path and Path(overlay_path.name),
        )

    return build


# The real files


def test_local_registry_needs_no_aws_and_no_variables(at_root: None) -> None:
    registry = load_registry(real_settings("dev", service_overlay_path=LOCAL), environ={})
    assert set(registry.services) == {"nexus", "zen", "agents", "ingestion"}
    for service in registry.services.values():
        assert isinstance(service.auth, BasicAuthEnv)
    nexus = registry.services["nexus"]
    assert str(nexus.base_url) == "http://127.0.0.1:9101/"
    assert nexus.auth == BasicAuthEnv(
        type="basic", username_env="NEXUS_SERVICE_USER", password_env="NEXUS_SERVICE_PASSWORD"
    )
    agents = registry.services["agents"]
    assert agents.base_url.path == "/orchestrator"
    assert (agents.permissions.read, agents.permissions.write) == ("agents:read", "agents:run")
    assert registry.services["ingestion"].max_body_bytes == 1024**3
    assert registry.services["zen"].permissions.write == "zen:chat"
    assert [s.key for s in registry.dashboard.sources] == [
        "documents",
        "chat",
        "agents",
        "ingestion",
    ]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_deployed_stages_read_credentials_from_ssm(at_root: None, stage: str) -> None:
    registry = load_registry(real_settings(stage), environ=URLS)
    for name, service in registry.services.items():
        assert service.auth == BasicAuthSSM(type="basic", ssm_prefix=f"/sentinel/{stage}/{name}")
    assert str(registry.services["nexus"].base_url) == "https://nexus.internal/"
    assert str(registry.services["agents"].base_url) == "https://agents.internal/orchestrator"


def test_prod_refuses_to_guess_a_base_url(at_root: None) -> None:
    env = {k: v for k, v in URLS.items() if k != "NEXUS_URL"}
    with pytest.raises(RegistryError) as caught:
        load_registry(real_settings("prod"), environ=env)
    assert str(caught.value) == (
        "deployment/config/prod.yml: services.nexus.base_url: "
        "environment variable NEXUS_URL is not set and has no default"
    )


def test_nexus_has_exactly_32_routes_each_with_a_permission(at_root: None) -> None:
    nexus = load_registry(real_settings("dev"), environ=URLS).services["nexus"]
    assert nexus.mode == "explicit"
    assert len(nexus.routes) == 32
    assert {r.permission for r in nexus.routes} == {"nexus:read", "nexus:write"}
    assert len({(r.method, r.path) for r in nexus.routes}) == 32
    assert nexus.max_body_bytes >= 200 * 1024 * 1024


def test_only_the_v2_progress_route_skips_the_envelope(at_root: None) -> None:
    nexus = load_registry(real_settings("dev"), environ=URLS).services["nexus"]
    raw = [(r.method, r.path) for r in nexus.routes if not r.envelope]
    assert raw == [("GET", "/v2/jobs/{job_id}/progress")]


def test_the_base_file_alone_uses_ssm_for_the_current_stage(at_root: None, tmp_path: Path) -> None:
    missing = tmp_path / "none.yml"
    settings = real_settings("dev", service_overlay_path=None)
    # Without a stage file, the base file's SSM prefixes apply, and ${ENVIRONMENT} is the stage
    # (even when the process environment says otherwise).
    settings_without_overlay = settings.model_copy(update={"environment": "staging"})
    assert not missing.exists()
    registry = load_registry(settings_without_overlay, environ=URLS | {"ENVIRONMENT": "dev"})
    assert registry.services["zen"].auth == BasicAuthSSM(
        type="basic", ssm_prefix="/sentinel/staging/zen"
    )


def test_interpolation_env_pins_environment_to_the_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.setenv("STUDIO_TEST_MARKER", "here")
    (tmp_path / ".env").write_text("FROM_ENV_FILE=file\nSTUDIO_TEST_MARKER=file\n")
    env = interpolation_env(real_settings("staging"))
    assert env["ENVIRONMENT"] == "staging"
    assert env["FROM_ENV_FILE"] == "file"
    assert env["STUDIO_TEST_MARKER"] == "here"  # the real environment wins over env files


# Overlay merge


def test_overlay_merges_replaces_and_removes(write: Any) -> None:
    settings = write(
        BASE,
        """\
services:
  nexus:
    description: null            # removed
    timeouts: {read: 90}         # merged: connect stays 5
    routes:                      # lists replace
      - {method: GET, path: /documents/stats}
      - {method: POST, path: /search, permission: "nexus:read"}
  zen: {max_connections: 7}
""",
    )
    registry = load_registry(settings, environ={})
    nexus = registry.services["nexus"]
    assert nexus.description is None
    assert (nexus.timeouts.connect, nexus.timeouts.read) == (5, 90)
    assert [(r.method, r.path) for r in nexus.routes] == [
        ("GET", "/documents/stats"),
        ("POST", "/search"),
    ]
    assert registry.services["zen"].max_connections == 7


def test_null_swaps_ssm_auth_for_env_auth(write: Any) -> None:
    settings = write(
        BASE,
        "services:\n  nexus:\n    auth: {ssm_prefix: null, username_env: U, password_env: P}\n",
    )
    auth = load_registry(settings, environ={}).services["nexus"].auth
    assert auth == BasicAuthEnv(type="basic", username_env="U", password_env="P")


def test_null_removes_a_whole_service(write: Any) -> None:
    settings = write(BASE, "services:\n  zen: null\n")
    assert set(load_registry(settings, environ={}).services) == {"nexus"}


def test_overlay_can_replace_a_value_that_needs_a_variable(write: Any) -> None:
    base = BASE.replace("${NEXUS_URL:-http://127.0.0.1:9101}", "${NEXUS_URL}")
    settings = write(base, "services:\n  nexus:\n    base_url: http://nexus.local\n")
    # Interpolation runs after the merge, so the base file's ${NEXUS_URL} is never needed.
    assert str(load_registry(settings, environ={}).services["nexus"].base_url) == (
        "http://nexus.local/"
    )


def test_an_empty_overlay_changes_nothing(write: Any) -> None:
    with_overlay = load_registry(write(BASE, "# nothing here\n"), environ={})
    without = load_registry(write(BASE), environ={})
    assert with_overlay == without


def test_interpolation_defaults_and_values(write: Any) -> None:
    settings = write(BASE, environment="prod")
    env: dict[str, str] = {}
    nexus = load_registry(settings, environ=env).services["nexus"]
    assert str(nexus.base_url) == "http://127.0.0.1:9101/"
    assert nexus.auth == BasicAuthSSM(type="basic", ssm_prefix="/sentinel/prod/nexus")
    nexus = load_registry(settings, environ=env | {"NEXUS_URL": "http://n:1"}).services["nexus"]
    assert str(nexus.base_url) == "http://n:1/"


def test_interpolated_numbers_are_validated_as_numbers(write: Any) -> None:
    settings = write(BASE.replace("read: 60", 'read: "${READ_TIMEOUT:-60}"'))
    registry = load_registry(settings, environ={"ENVIRONMENT": "dev", "READ_TIMEOUT": "75.5"})
    assert registry.services["nexus"].timeouts.read == 75.5


# Mistakes: each names the file(s), the key and the problem


def test_missing_base_file(write: Any) -> None:
    settings = write(BASE).model_copy(update={"service_config_path": Path("nope/services.yaml")})
    with pytest.raises(RegistryError, match=r"^nope/services\.yaml: file not found"):
        load_registry(settings, environ={})


def test_missing_named_overlay_is_an_error(write: Any) -> None:
    settings = write(BASE).model_copy(update={"service_overlay_path": Path("typo.yml")})
    with pytest.raises(RegistryError, match=r"^typo\.yml: overlay file not found"):
        load_registry(settings, environ={})


def test_the_documented_example_message(write: Any) -> None:
    settings = write(BASE, "services:\n  nexus:\n    timeouts: {read: 0}\n", environment="prod")
    with pytest.raises(RegistryError) as caught:
        load_registry(settings, environ={"ENVIRONMENT": "prod"})
    assert str(caught.value) == (
        "services.yaml (+ prod.yml): services.nexus.timeouts.read: Input should be greater than 0"
    )


@pytest.mark.parametrize(
    ("base", "overlay", "expected"),
    [
        pytest.param(
            "services:\n  nexus: {mode: explicit\n",
            None,
            r"^services\.yaml: line \d+, column \d+: .*flow mapping",
            id="yaml-syntax-base",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n\ttimeouts: 1\n",
            r"^prod\.yml: line 3, column 1: .*",
            id="yaml-syntax-overlay",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    timeout: {read: 5}\n",
            r"^services\.yaml \(\+ prod\.yml\): services\.nexus\.timeout: unknown key$",
            id="unknown-key",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    max_body_bytes: lots\n",
            r": services\.nexus\.max_body_bytes: Input should be a valid integer",
            id="wrong-type",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    mode: explicitt\n",
            r": services\.nexus\.mode: Input should be 'explicit' or 'wildcard'$",
            id="bad-literal",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    base_url: not a url\n",
            r": services\.nexus\.base_url: Input should be a valid URL",
            id="bad-url",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    auth: {ssm_prefix: 'no-slash'}\n",
            r": services\.nexus\.auth\.ssm_prefix: String should match pattern",
            id="bad-ssm-prefix",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    auth: {type: oauth}\n",
            r": services\.nexus\.auth: auth must be \{type: basic",
            id="unknown-auth-type",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    auth: {ssm_prefix: null, username_env: U}\n",
            r": services\.nexus\.auth\.password_env: required key is missing$",
            id="half-env-auth",
        ),
        pytest.param(
            BASE,
            "services:\n  zen:\n    permissions: {read: 'Zen Chat'}\n",
            r": services\.zen\.permissions\.read: String should match pattern",
            id="bad-permission",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    routes: [{method: GET, path: /a}, {method: FETCH, path: /b}]"
            "\n",
            r": services\.nexus\.routes\[1\]\.method: Input should be 'GET'",
            id="bad-method",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    routes: [{method: GET, path: '/a/{id'}]\n",
            r": services\.nexus\.routes\[0\]\.path: path '/a/\{id' has an unbalanced brace$",
            id="bad-template",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    routes: [{method: GET, path: '/a/../b'}]\n",
            r": services\.nexus\.routes\[0\]\.path: path '/a/\.\./b' has an empty",
            id="dot-segment",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    routes: []\n",
            r": services\.nexus: an explicit service needs at least one route$",
            id="explicit-without-routes",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    routes: [{method: GET, path: /a}, {method: get, path: /a}]\n",
            r": services\.nexus: route GET /a is listed twice$",
            id="duplicate-route",
        ),
        pytest.param(
            BASE,
            "dashboard:\n  sources: [{key: x, service: ghost, path: /stats}]\n",
            r"^services\.yaml \(\+ prod\.yml\): dashboard source 'x' names unknown service",
            id="dashboard-unknown-service",
        ),
        pytest.param(
            BASE,
            "dashboard:\n  sources: [{key: x, service: nexus, path: /not/listed}]\n",
            r"dashboard source 'x': GET /not/listed is not a route of 'nexus'$",
            id="dashboard-path-not-a-route",
        ),
        pytest.param(
            BASE,
            "services:\n  Nexus2!: {base_url: 'http://x', mode: wildcard,"
            " permissions: {read: a, write: b}}\n",
            r": services: Value error|: services: service name 'Nexus2!'",
            id="bad-service-name",
        ),
        pytest.param(
            BASE,
            "services:\n  nexus:\n    mode: wildcard\n    mode: explicit\n",
            r"^prod\.yml: line 4, column 5: duplicate key 'mode'",
            id="duplicate-key",
        ),
        pytest.param(
            BASE,
            "- services\n",
            r"^prod\.yml: the top level must be a mapping, not a list$",
            id="top-level-list",
        ),
        pytest.param(
            BASE,
            "services:\n  zen:\n    base_url: 'http://${ZEN HOST}'\n",
            r"^prod\.yml: services\.zen\.base_url: bad placeholder '\$\{ZEN HOST\}'",
            id="bad-placeholder",
        ),
        pytest.param(
            BASE,
            "services:\n  zen:\n    base_url: 'http://${ZEN_HOST'\n",
            r"^prod\.yml: services\.zen\.base_url: unterminated",
            id="unterminated-placeholder",
        ),
        pytest.param(
            BASE.replace("${ENVIRONMENT}", "${STAGE_NAME}"),
            None,
            r"^services\.yaml: services\.nexus\.auth\.ssm_prefix: environment variable "
            r"STAGE_NAME is not set and has no default$",
            id="missing-variable-in-base",
        ),
        pytest.param(
            "services: {}\nextra_top: 1\n",
            None,
            r"^services\.yaml: extra_top: unknown key$",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "",
            None,
            r"^services\.yaml: services: required key is missing$",
            id="empty-base",
        ),
    ],
)
def test_each_mistake_names_file_and_key(
    write: Any, base: str, overlay: str | None, expected: str
) -> None:
    settings = write(base, overlay, environment="prod")
    with pytest.raises(RegistryError, match=expected):
        load_registry(settings, environ={"ENVIRONMENT": "prod"})


def test_every_problem_is_listed(write: Any) -> None:
    overlay = "services:\n  nexus:\n    max_connections: 0\n    timeouts: {pool: -1}\n"
    with pytest.raises(RegistryError) as caught:
        load_registry(write(BASE, overlay, environment="prod"), environ={"ENVIRONMENT": "x"})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith("services.yaml (+ prod.yml): services.nexus.") for line in lines)


def test_yaml_merge_keys_are_not_duplicates(write: Any) -> None:
    base = """\
defaults: &defaults
  mode: wildcard
  permissions: {read: "zen:chat", write: "zen:chat"}
services:
  zen:
    <<: *defaults
    base_url: http://zen
    mode: wildcard
"""
    # `defaults` is not a registry key, so remove it in the overlay after it served as an anchor.
    registry: RegistryConfig = load_registry(write(base, "defaults: null\n"), environ={})
    assert registry.services["zen"].mode == "wildcard"


def test_registry_error_is_a_value_error() -> None:
    assert issubclass(RegistryError, ValueError)
