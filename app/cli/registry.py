"""`studio routes` and the registry part of `studio check-config`."""

from __future__ import annotations

import argparse
import sys

from app.core.commands import CONFIG_CHECKS, command, load_settings
from app.core.config import Settings
from app.credentials.factory import build_providers
from app.registry.loader import RegistryError, load_registry
from app.registry.schema import RegistryConfig

HEADERS = ("SERVICE", "MODE", "METHOD", "PATH", "PERMISSION", "ENVELOPE")


def route_rows(registry: RegistryConfig, service: str | None = None) -> list[tuple[str, ...]]:
    """One row per route; a wildcard service has one `ANY /{path}` row (plus any listed route)."""
    rows: list[tuple[str, ...]] = []
    for name, config in registry.services.items():
        if service is not None and name != service:
            continue
        for route in config.routes:
            permission = route.permission or config.permission_for(route.method)
            envelope = "yes" if route.envelope else "no"
            rows.append((name, config.mode, route.method, route.path, permission, envelope))
        if config.mode == "wildcard":
            read, write = config.permissions.read, config.permissions.write
            permission = read if read == write else f"read={read} write={write}"
            rows.append((name, config.mode, "ANY", "/{path}", permission, "yes"))
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns under `HEADERS`."""
    widths = [max(len(row[i]) for row in (HEADERS, *rows)) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (HEADERS, *rows)
    ]
    return "\n".join(lines)


def _routes_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service", help="only this service")


@command("routes", "list the routes of the service registry", _routes_args)
def routes(ns: argparse.Namespace) -> int:
    """Print the registry's routes as a table."""
    settings = load_settings()
    try:
        registry = load_registry(settings)
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return 2
    if ns.service is not None and ns.service not in registry.services:
        print(
            f"unknown service {ns.service!r}; known: {', '.join(registry.services)}",
            file=sys.stderr,
        )
        return 2
    print(format_table(route_rows(registry, ns.service)))
    return 0


def check_registry(settings: Settings) -> None:
    """Load and validate the registry with the stage's overlay; exit 2 with the reason if bad."""
    try:
        registry = load_registry(settings)
        build_providers(registry, settings)  # every auth block maps to a provider (no I/O)
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    routes_total = sum(len(s.routes) for s in registry.services.values())
    print(f"service registry is valid: {len(registry.services)} services, {routes_total} routes")


if check_registry not in CONFIG_CHECKS:
    CONFIG_CHECKS.append(check_registry)
