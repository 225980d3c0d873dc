"""`studio openapi [--output FILE]`: the OpenAPI schema, in any ENVIRONMENT."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.core.commands import command, load_settings


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", type=Path, default=None, help="file to write (default stdout)")


@command("openapi", "write the OpenAPI schema (served at /openapi.json in dev only)", _args)
def openapi(ns: argparse.Namespace) -> int:
    """Build the app for the current settings and write its schema as JSON."""
    from app.main import create_app

    schema = create_app(load_settings()).openapi()
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if ns.output is None:
        sys.stdout.write(text)
        return 0
    ns.output.parent.mkdir(parents=True, exist_ok=True)
    ns.output.write_text(text, encoding="utf-8")
    print(f"OpenAPI schema written to {ns.output}", file=sys.stderr)
    return 0
