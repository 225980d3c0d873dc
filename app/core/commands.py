"""The `studio` command registry: domains declare commands here, `app.cli` runs them.

A leaf, so a domain's `cli.py` registers its commands without importing the command line
(which imports the app, and so every domain).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from app.core.config import Settings, settings_or_exit

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Command, Callable[[argparse.ArgumentParser], None], str]] = {}
# Domains append validators here (each raises SystemExit with a message on a problem).
CONFIG_CHECKS: list[Callable[[Settings], Any]] = []


def command(
    name: str, help_text: str, args: Callable[[argparse.ArgumentParser], None] | None = None
) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = (fn, args or (lambda _: None), help_text)
        return fn

    return register


def load_settings() -> Settings:
    """Settings, or a readable message and exit code 2 when they are invalid."""
    return settings_or_exit()
