"""Wildcard permission matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.identity.permissions import grants

name = st.from_regex(r"[a-z]{1,8}:[a-z]{1,8}", fullmatch=True)


@pytest.mark.parametrize(
    ("held", "required", "expected"),
    [
        (["*"], "nexus:read", True),
        (["nexus:*"], "nexus:write", True),
        (["nexus:read"], "nexus:read", True),
        (["nexus:read"], "nexus:write", False),
        (["nexus:*"], "zen:chat", False),
        (["nex:*"], "nexus:read", False),
        (["nexus"], "nexus:read", False),
        ([], "nexus:read", False),
        (["zen:chat", "dashboard:read"], "dashboard:read", True),
    ],
)
def test_grants(held: list[str], required: str, expected: bool) -> None:
    assert grants(held, required) is expected


@given(name)
def test_star_grants_everything_and_area_star_only_its_area(required: str) -> None:
    area = required.split(":")[0]
    assert grants(["*"], required)
    assert grants([f"{area}:*"], required)
    assert not grants([f"{area}x:*"], required)
