"""SSM down at boot and later: CREDENTIALS_UNAVAILABLE for that service only, then recovery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from app.core.aws import reset_shared_ssm_clients, shared_ssm_client
from tests.gateway.conftest import PASSWORD, USER
from tests.hardening.conftest import API, assert_error, overlay, user

pytestmark = [pytest.mark.services]
REGION = "us-east-1"
PREFIX = "/sentinel/hardening/zen"


class Outage:
    """Switches the process-wide SSM client between working and unreachable."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.client = shared_ssm_client(REGION)
        self.real = self.client.get_parameters

    def down(self) -> None:
        def unreachable(**_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://ssm.us-east-1.amazonaws.com")

        self.monkeypatch.setattr(self.client, "get_parameters", unreachable)

    def up(self) -> None:
        self.monkeypatch.setattr(self.client, "get_parameters", self.real)


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        reset_shared_ssm_clients()
        client = boto3.client("ssm", region_name=REGION)
        client.put_parameter(Name=f"{PREFIX}/service-user", Value=USER, Type="SecureString")
        client.put_parameter(Name=f"{PREFIX}/service-password", Value=PASSWORD, Type="SecureString")
        yield Outage(monkeypatch)
        reset_shared_ssm_clients()


def _ssm_zen(studio: Callable[..., Any], tmp_path: Path, ttl: float) -> Any:
    auth = {"type": "basic", "ssm_prefix": PREFIX, "username_env": None, "password_env": None}
    return studio(
        service_overlay_path=overlay(tmp_path, zen={"auth": auth}),
        aws_region=REGION,
        ssm_cache_ttl=ttl,
    )


async def test_ssm_down_at_boot_only_that_service_fails_then_recovers(
    studio: Callable[..., Any], ssm: Outage, tmp_path: Path
) -> None:
    ssm.down()
    async with _ssm_zen(studio, tmp_path, ttl=300) as (client, state):  # boots without SSM
        _, headers = await user(client, state, "admin")
        body = assert_error(
            await client.get(f"{API}/zen/echo", headers=headers), 503, "CREDENTIALS_UNAVAILABLE"
        )
        assert body["error"]["details"] == {"service": "zen"}
        assert (await client.get(f"{API}/nexus/documents", headers=headers)).status_code == 200
        assert (await client.get(f"{API}/health")).status_code == 200
        ssm.up()
        assert (await client.get(f"{API}/zen/echo", headers=headers)).status_code == 200


async def test_ssm_down_later_keeps_the_last_pair_until_it_stops_working(
    studio: Callable[..., Any],
    ssm: Outage,
    tmp_path: Path,
    fake_services: dict[str, Any],
) -> None:
    async with _ssm_zen(studio, tmp_path, ttl=0) as (client, state):
        _, headers = await user(client, state, "admin")
        assert (await client.get(f"{API}/zen/echo", headers=headers)).status_code == 200
        ssm.down()
        # The cached pair still works: an SSM outage alone costs nothing.
        assert (await client.get(f"{API}/zen/echo", headers=headers)).status_code == 200
        fake_services["zen"].set_password("rotated-password")
        try:
            # The downstream refuses the old pair and SSM cannot give a new one: 503 for zen only.
            assert_error(
                await client.get(f"{API}/zen/echo", headers=headers),
                503,
                "CREDENTIALS_UNAVAILABLE",
            )
            assert (await client.get(f"{API}/nexus/documents", headers=headers)).status_code == 200
            boto3.client("ssm", region_name=REGION).put_parameter(
                Name=f"{PREFIX}/service-password",
                Value="rotated-password",
                Type="SecureString",
                Overwrite=True,
            )
            ssm.up()
            assert (await client.get(f"{API}/zen/echo", headers=headers)).status_code == 200
        finally:
            fake_services["zen"].set_password(PASSWORD)
