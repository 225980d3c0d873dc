"""One credential provider per service, chosen by the service's `auth` block in the registry."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from app.core.config import Settings
from app.credentials.base import CredentialProvider
from app.credentials.env import EnvCredentialProvider
from app.credentials.none import NoCredentialProvider
from app.credentials.ssm import SSMCredentialProvider, shared_ssm_client
from app.registry.schema import BasicAuthEnv, BasicAuthSSM, RegistryConfig

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


def build_providers(
    registry: RegistryConfig,
    settings: Settings,
    *,
    ssm_client_factory: Callable[[], SSMClient] | None = None,
) -> dict[str, CredentialProvider]:
    """Map each service name to its provider; nothing is read until a provider is used."""
    region = settings.aws_region or os.environ.get("AWS_REGION")
    client_factory = ssm_client_factory or partial(shared_ssm_client, region)
    by_prefix: dict[str, SSMCredentialProvider] = {}
    providers: dict[str, CredentialProvider] = {}
    for name, service in registry.services.items():
        auth = service.auth
        if isinstance(auth, BasicAuthSSM):
            # Services sharing a prefix share one cache, so one rotation means one SSM read.
            if auth.ssm_prefix not in by_prefix:
                by_prefix[auth.ssm_prefix] = SSMCredentialProvider(
                    auth.ssm_prefix, client_factory, settings.ssm_cache_ttl
                )
            providers[name] = by_prefix[auth.ssm_prefix]
        elif isinstance(auth, BasicAuthEnv):
            providers[name] = EnvCredentialProvider(auth.username_env, auth.password_env)
        else:
            providers[name] = NoCredentialProvider()
    return providers
