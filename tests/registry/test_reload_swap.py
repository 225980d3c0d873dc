"""The swap itself: what a reload keeps, rebuilds, retires, and when a retired pool closes."""

from __future__ import annotations

import asyncio
from typing import Any

from app.core.config import Settings
from app.credentials.factory import build_providers
from app.proxy.state import build_proxy_state, next_snapshot
from app.registry.schema import RegistryConfig, ServiceConfig


class Pool:
    """A stand-in upstream client that records when it is closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def send(self, *args: Any) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True


def client_factory(name: str, config: ServiceConfig) -> Any:
    return Pool(name)


def tree(zen_url: str = "http://zen:1", with_agents: bool = True) -> RegistryConfig:
    auth = {"type": "basic", "username_env": "U", "password_env": "P"}
    services: dict[str, Any] = {
        "nexus": {"base_url": "http://nexus:1", "mode": "wildcard", "auth": auth},
        "zen": {"base_url": zen_url, "mode": "wildcard", "auth": auth},
    }
    if with_agents:
        services["agents"] = {"base_url": "http://agents:1", "mode": "wildcard"}
    for service in services.values():
        service["permissions"] = {"read": "x:read", "write": "x:write"}
    return RegistryConfig.model_validate({"services": services})


async def test_unchanged_services_keep_everything_changed_ones_drain_first() -> None:
    settings = Settings(_env_file=None)
    old = tree()
    providers = build_providers(old, settings)
    proxy = build_proxy_state(old, providers, settings, client_factory=client_factory)
    nexus, zen, agents = (proxy.services[n] for n in ("nexus", "zen", "agents"))
    zen.enter()  # a stream in flight on zen

    new = tree(zen_url="http://zen-b:1", with_agents=False)
    new_providers = build_providers(new, settings, previous=(old, providers))
    report = proxy.swap(next_snapshot(proxy.services, new, new_providers, settings,
                                      version="v2", client_factory=client_factory))  # fmt: skip

    assert (report.added, report.changed, report.removed) == ((), ("zen",), ("agents",))
    assert proxy.services.version == "v2"
    # Unchanged: the same runtime (pool, breaker) and the same provider (its cache).
    assert proxy.services["nexus"] is nexus and new_providers["nexus"] is providers["nexus"]
    # Changed: a fresh pool; the old one stays open while its stream runs, then closes.
    assert proxy.services["zen"] is not zen and zen.retired
    await asyncio.sleep(0)
    assert not zen.client.closed  # type: ignore[attr-defined]
    zen.leave()
    assert zen.closed is not None
    await zen.closed
    assert zen.client.closed  # type: ignore[attr-defined]
    # Removed: nothing in flight, closed at once; new requests do not find it.
    assert "agents" not in proxy.services and agents.closed is not None
    await agents.closed
    await proxy.aclose()
    assert proxy.services["zen"].client.closed  # type: ignore[attr-defined]
