"""The directory where several workers' metrics meet (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(workers: int) -> Path | None:
    """Before the workers start: with several of them (or when the operator set one), an
    existing, emptied PROMETHEUS_MULTIPROC_DIR that every worker inherits; else None.

    Emptied because a previous run's files would be summed into this one's counters. Only
    prometheus_client's `*.db` files are removed, in case the directory holds anything else.
    """
    configured = os.environ.get(ENV)
    if not configured and workers <= 1:
        return None
    path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="studio-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[ENV] = str(path)
    return path
