"""SSM (moto) to downstream: Basic Auth from SecureStrings, rotation picked up after one 401."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AWS_REGION as REGION
from tests.fakes.server import FakeService
from tests.gateway.conftest import PASSWORD, USER, account


@pytest.fixture
def ssm(fake_ssm: Any) -> Any:
    for name in ("nexus", "zen", "agents", "ingestion"):
        fake_ssm.put_parameter(
            Name=f"/sentinel/dev/{name}/service-user", Value=USER, Type="SecureString"
        )
        fake_ssm.put_parameter(
            Name=f"/sentinel/dev/{name}/service-password", Value=PASSWORD, Type="SecureString"
        )
    return fake_ssm


async def test_downstream_gets_ssm_credentials_and_rotation_needs_no_restart(
    gateway: Any, ssm: Any, fake_services: dict[str, FakeService], tmp_path: Path
) -> None:
    overlay = tmp_path / "ssm.yml"
    overlay.write_text("{}\n")  # the base file's SSM auth, no env-var override
    zen = fake_services["zen"]
    zen.reset()
    try:
        async with gateway(service_overlay_path=overlay, aws_region=REGION, ssm_cache_ttl=3600) as (
            client,
            state,
        ):
            user = await account(client, state)
            first = await client.get("/api/v1/zen/echo/one", headers=user)
            assert first.status_code == 200, first.text
            assert zen.auth_failures == 0

            # Rotate: the service and SSM change; Studio's cached pair is now stale.
            zen.set_password("rotated-password")
            ssm.put_parameter(
                Name="/sentinel/dev/zen/service-password",
                Value="rotated-password",
                Type="SecureString",
                Overwrite=True,
            )
            second = await client.get("/api/v1/zen/echo/two", headers=user)
            assert second.status_code == 200, second.text
            assert zen.auth_failures == 1  # one 401, then a refresh and one resend
            third = await client.get("/api/v1/zen/echo/three", headers=user)
            assert third.status_code == 200 and zen.auth_failures == 1
            # The client's own credentials never reached the service.
            seen = zen.calls("/echo/three")[-1].headers
            assert (
                seen["authorization"].startswith("Basic ") and "Bearer" not in seen["authorization"]
            )
    finally:
        zen.set_password(PASSWORD)


async def test_ssm_down_affects_only_that_service(gateway: Any, ssm: Any, tmp_path: Path) -> None:
    overlay = tmp_path / "ssm.yml"
    overlay.write_text("{}\n")
    ssm.delete_parameter(Name="/sentinel/dev/agents/service-password")
    async with gateway(service_overlay_path=overlay, aws_region=REGION) as (client, state):
        user = await account(client, state)
        broken = await client.get("/api/v1/agents/runs", headers=user)
        assert broken.status_code == 503
        assert broken.json()["error"]["code"] == "CREDENTIALS_UNAVAILABLE"
        assert "service-password" not in broken.text
        assert (await client.get("/api/v1/zen/echo/ok", headers=user)).status_code == 200
