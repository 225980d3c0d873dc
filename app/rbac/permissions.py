"""Permission strings `area:action` and wildcard matching (`*`, `area:*`)."""

from __future__ import annotations

from collections.abc import Iterable


def grants(held: Iterable[str], required: str) -> bool:
    """True when any held permission covers `required`."""
    area = required.split(":", 1)[0]
    return any(p in ("*", required) or p == f"{area}:*" for p in held)
