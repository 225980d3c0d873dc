"""Freeze what start-up built, so the cyclic GC no longer walks it (`RUNTIME_GC_FREEZE`).

Everything the lifespan built before serving lives as long as the process; full collections
under load walked all of it and were the p99 (~100 ms pauses, BENCHMARKS.md).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen(enabled: bool) -> Iterator[None]:
    """While inside: every object alive on entry is out of the GC's reach (undone on exit)."""
    if not enabled:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
