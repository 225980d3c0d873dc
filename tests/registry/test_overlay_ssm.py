"""`SERVICE_OVERLAY_SSM_PARAMETER`: the stage overlay read from SSM (moto), so a deployed stack
whose image files cannot change still changes its registry live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.registry.live import fingerprint, load_versioned
from app.registry.loader import RegistryError, load_registry
from app.registry.schema import BasicAuthEnv
from tests.conftest import AWS_REGION as REGION
from tests.conftest import ROOT

PARAMETER = "/sentinel/dev/studio/registry-overlay"
LOCAL = (ROOT / "config" / "local.yml").read_text()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        service_overlay_path=None, service_overlay_ssm_parameter=PARAMETER, aws_region=REGION
    )


def _put(ssm: Any, value: str) -> None:
    ssm.put_parameter(Name=PARAMETER, Value=value, Type="SecureString", Overwrite=True)


def test_the_overlay_comes_from_the_parameter_and_a_change_is_a_new_registry(
    fake_ssm: Any, settings: Settings
) -> None:
    _put(fake_ssm, LOCAL)
    first = load_versioned(settings)
    assert first.files == (str(settings.service_config_path), f"ssm:{PARAMETER}")
    # local.yml's credentials from the environment, not SSM: the overlay was applied.
    assert isinstance(first.config.services["nexus"].auth, BasicAuthEnv)
    assert fingerprint(settings) == first.version

    _put(fake_ssm, LOCAL.replace("  nexus:\n", "  nexus:\n    max_connections: 7\n", 1))
    assert fingerprint(settings) != first.version  # what the watch compares
    second = load_versioned(settings)
    assert second.config.services["nexus"].max_connections == 7
    assert second.version != first.version


def test_a_missing_or_broken_parameter_is_a_registry_error_naming_it(
    fake_ssm: Any, settings: Settings
) -> None:
    with pytest.raises(RegistryError, match=f"ssm:{PARAMETER}: cannot be read: ParameterNotFound"):
        load_registry(settings)
    assert fingerprint(settings) is None
    _put(fake_ssm, "services: [\n")
    with pytest.raises(RegistryError, match=f"ssm:{PARAMETER}: line"):
        load_registry(settings)


def test_one_overlay_only(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name two overlays"):
        make_settings(
            service_overlay_path=tmp_path / "x.yml", service_overlay_ssm_parameter=PARAMETER
        )
