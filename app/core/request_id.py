"""Request ids: the client's when well-formed, else a fresh one."""

from __future__ import annotations

import re
from uuid import uuid4

_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def accept_or_new(candidate: str | None) -> str:
    """Keep a client id of 1-128 chars of `[A-Za-z0-9._-]`; otherwise make one."""
    if candidate and _VALID.fullmatch(candidate):
        return candidate
    return uuid4().hex
