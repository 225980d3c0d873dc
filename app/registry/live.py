"""The registry a process serves, with its version, and what a reload found.

`LiveRegistry.current` is replaced whole by a reload, never changed in place: a reader takes
it once and keeps a consistent registry for as long as it needs one. The version is a content
hash of the documents (base file and stage overlay, from a file or SSM), so every worker and
instance that read the same documents reports the same version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from app.core.config import Settings
from app.registry.loader import RegistryError, load_registry
from app.registry.schema import RegistryConfig
from app.registry.sources import Document, SourceError, overlay_label, read_overlay

VERSION_CHARS = 16  # of the SHA-256 hex digest: plenty to tell two files apart


class ReloadOutcome(StrEnum):
    """What a reload did (the `outcome` label of studio_registry_reloads_total)."""

    APPLIED = "applied"  # a new registry serves
    UNCHANGED = "unchanged"  # the files hold what already serves
    REJECTED = "rejected"  # the files are broken: the running registry keeps serving


@dataclass(frozen=True, slots=True)
class LoadedRegistry:
    """A validated registry and where and when it came from."""

    config: RegistryConfig
    version: str
    loaded_at: datetime
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReloadAttempt:
    """The last reload: its outcome, when, and the loader's message when it was rejected."""

    outcome: ReloadOutcome
    at: datetime
    version: str | None  # of the files read; None when they could not be read
    error: str | None = None


class LiveRegistry:
    """The registry this process serves now (`current`) and the last reload attempt."""

    __slots__ = ("current", "last_attempt")

    def __init__(self, current: LoadedRegistry) -> None:
        self.current = current
        self.last_attempt: ReloadAttempt | None = None


def registry_sources(settings: Settings) -> tuple[str, ...]:
    """What the registry is read from: the base file, and the overlay when there is one."""
    name = settings.service_overlay_ssm_parameter
    overlay = settings.overlay_path
    if name or overlay.is_file() or settings.service_overlay_path is not None:
        return str(settings.service_config_path), overlay_label(settings)
    return (str(settings.service_config_path),)


def fingerprint(settings: Settings) -> str | None:
    """The content hash of the registry's documents now; None when one cannot be read."""
    try:
        base = Document(
            str(settings.service_config_path), settings.service_config_path.read_bytes()
        )
        overlay = read_overlay(settings)
    except (OSError, SourceError):
        return None
    digest = hashlib.sha256()
    for document in (base,) if overlay is None else (base, overlay):
        # Each one's name and length go in too: moving bytes between them changes the hash.
        digest.update(f"{document.label}\0{len(document.content)}\0".encode())
        digest.update(document.content)
    return digest.hexdigest()[:VERSION_CHARS]


def load_versioned(settings: Settings) -> LoadedRegistry:
    """`load_registry` with the files' version; raises `RegistryError` like it.

    The version is taken before and after reading: a file replaced while it was read is
    reported as an error (the next reload reads it again), never served under a wrong version.
    """
    before = fingerprint(settings)
    config = load_registry(settings)
    after = fingerprint(settings)
    if before is None or before != after:
        raise RegistryError(
            f"{settings.service_config_path}: the registry files changed while they were read"
        )
    files = registry_sources(settings)
    return LoadedRegistry(config, after, datetime.now(UTC), files)
