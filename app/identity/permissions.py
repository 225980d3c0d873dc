"""Permission strings `area:action` and wildcard matching (`*`, `area:*`)."""

from __future__ import annotations

from collections.abc import Iterable


def grants(held: Iterable[str], required: str) -> bool:
    """True when any held permission covers `required`."""
    area = required.split(":", 1)[0]
    return any(p in ("*", required) or p == f"{area}:*" for p in held)


def uncovered(held: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The permissions of `wanted` that `held` does not cover, sorted. `*` covers all and
    `area:*` covers `area:x`; a wanted `area:*` needs `area:*` or `*`, a wanted `*` needs `*`."""
    held = frozenset(held)
    return sorted({p for p in wanted if not grants(held, p)})
