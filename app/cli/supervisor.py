"""`studio serve`'s process management: the pid file, and a uvicorn supervisor that forwards
`SIGHUP` to its workers (each reloads its service registry) instead of restarting them.

Subclasses uvicorn's `Multiprocess`, whose signal queue and `handle_<signal>` dispatch are not a
public API: pyproject.toml bounds uvicorn (`<0.55`) to the series this was tested against, and
tests/registry/test_reload_workers.py drives it in a real multi-worker server.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from uvicorn.supervisors.multiprocess import Multiprocess

from app.core.logging import get_logger

log = get_logger("studio.serve")


class ReloadingMultiprocess(Multiprocess):
    """uvicorn's supervisor, but `SIGHUP` reloads the registry in every worker in place."""

    def handle_hup(self) -> None:
        """Forward SIGHUP to each live worker (uvicorn's own would replace every worker)."""
        for process in self.processes:
            pid = process.pid
            if pid is None or not process.process.is_alive():
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        log.info("SIGHUP forwarded to the workers: registry reload", workers=len(self.processes))


@contextlib.contextmanager
def pid_file(path: Path) -> Iterator[None]:
    """Write this process's id to `path` while the server runs; remove it after (if ours)."""
    mine = str(os.getpid())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(mine + "\n", encoding="ascii")
    except OSError as exc:  # `studio reload --pid` still works
        log.warning("pid file not written", path=str(path), error=type(exc).__name__)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text(encoding="ascii").strip() == mine:
                path.unlink()


def read_pid(path: Path) -> int | None:
    """The id in a pid file, or None when there is no file or no number in it."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
