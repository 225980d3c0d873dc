"""One credential provider per service, chosen by the service's `auth` block in the registry."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

from app.core.aws import shared_ssm_client
from app.core.config import Settings
from app.credentials.base import CredentialProvider
from app.credentials.env import EnvCredentialProvider
from app.credentials.none import NoCredentialProvider
from app.credentials.ssm import SSMCredentialProvider
from app.registry.schema import AuthConfig, BasicAuthEnv, BasicAuthSSM, RegistryConfig

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


def build_providers(
    registry: RegistryConfig,
    settings: Settings,
    *,
    ssm_client_factory: Callable[[], SSMClient] | None = None,
    previous: tuple[RegistryConfig, Mapping[str, CredentialProvider]] | None = None,
) -> dict[str, CredentialProvider]:
    """Map each service name to its provider; nothing is read until a provider is used.

    `previous` (the registry serving now and its providers): a service whose `auth` block is
    unchanged keeps its provider, and with it the credentials it has cached.
    """
    region = settings.aws_region or os.environ.get("AWS_REGION")
    client_factory = ssm_client_factory or partial(shared_ssm_client, region)
    by_prefix: dict[str, SSMCredentialProvider] = {}
    kept = _by_auth(*previous) if previous is not None else {}
    for auth, provider in kept.items():
        # A new service on a prefix already read shares that cache too.
        if isinstance(auth, BasicAuthSSM) and isinstance(provider, SSMCredentialProvider):
            by_prefix.setdefault(auth.ssm_prefix, provider)
    providers: dict[str, CredentialProvider] = {}
    for name, service in registry.services.items():
        auth = service.auth
        if auth in kept:
            providers[name] = kept[auth]
        elif isinstance(auth, BasicAuthSSM):
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


def _by_auth(
    registry: RegistryConfig, providers: Mapping[str, CredentialProvider]
) -> dict[AuthConfig, CredentialProvider]:
    """The providers serving now, by the `auth` block they were built for."""
    out: dict[AuthConfig, CredentialProvider] = {}
    for name, service in registry.services.items():
        provider = providers.get(name)
        if provider is not None:
            out.setdefault(service.auth, provider)
    return out
