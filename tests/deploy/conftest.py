"""The whole app in front of the fake downstreams (the gateway tests' fixtures)."""

from tests.gateway.conftest import downstreams, fake_services, gateway

__all__ = ["downstreams", "fake_services", "gateway"]
