"""Fake downstream services for tests and local runs (`python -m tests.fakes`)."""

from tests.fakes.server import FakeService, make_service, pattern

__all__ = ["FakeService", "make_service", "pattern"]
