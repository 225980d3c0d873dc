"""A broken registry stops start-up, naming the file and the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.core.config import Settings
from app.main import create_app
from app.registry.loader import RegistryError


def test_bad_registry_stops_create_app(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    bad = tmp_path / "services.yaml"
    bad.write_text(
        "services:\n  zen:\n    base_url: http://127.0.0.1:1\n    mode: sideways\n"
        "    permissions: {read: 'zen:chat', write: 'zen:chat'}\n"
    )
    empty = tmp_path / "overlay.yml"
    empty.write_text("{}\n")
    with pytest.raises(RegistryError) as caught:
        create_app(make_settings(service_config_path=bad, service_overlay_path=empty))
    message = str(caught.value)
    assert str(bad) in message and "services.zen.mode" in message
