"""Properties of `deep_merge` and `interpolate`, checked on generated trees."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.registry.loader import InterpolationError, deep_merge, interpolate

keys = st.text(alphabet="abcdef", min_size=1, max_size=3)
scalars = st.none() | st.booleans() | st.integers() | st.text(alphabet="xyz $", max_size=5)
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
mappings = st.dictionaries(keys, trees, max_size=5)


def has_none_value(tree: Any) -> bool:
    if isinstance(tree, dict):
        return any(v is None or has_none_value(v) for v in tree.values())
    return False  # lists replace verbatim, so their contents are out of scope


@given(mappings)
def test_empty_overlay_is_identity(base: dict[str, Any]) -> None:
    assert deep_merge(base, {}) == base


@given(mappings)
def test_merging_into_nothing_drops_the_overlays_nulls(overlay: dict[str, Any]) -> None:
    assert not has_none_value(deep_merge({}, overlay))


@given(mappings, mappings)
def test_overlay_keys_win_and_null_removes(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    merged = deep_merge(base, overlay)
    for key, value in overlay.items():
        if value is None:
            assert key not in merged
        elif isinstance(value, dict):
            below = base.get(key)
            assert merged[key] == deep_merge(below if isinstance(below, dict) else {}, value)
        else:
            assert merged[key] == value
    for key, value in base.items():
        if key not in overlay:
            assert merged[key] == value


@given(mappings, mappings)
def test_merge_is_idempotent(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    once = deep_merge(base, overlay)
    assert deep_merge(once, overlay) == once


@given(mappings, mappings)
def test_inputs_are_not_mutated_or_shared(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    before = (copy.deepcopy(base), copy.deepcopy(overlay))
    merged = deep_merge(base, overlay)
    assert (base, overlay) == before
    for key, value in merged.items():
        if isinstance(value, dict | list):
            assert value is not base.get(key) and value is not overlay.get(key)


@given(trees)
def test_interpolation_without_placeholders_is_identity(tree: Any) -> None:
    assert interpolate(tree, {}) == tree


@given(st.text(alphabet="abc/:.-", max_size=10), st.text(alphabet="abc/:.-", max_size=10))
def test_placeholder_takes_the_variable_else_the_default(value: str, default: str) -> None:
    assert interpolate(f"x${{V:-{default}}}y", {"V": value}) == f"x{value or default}y"
    assert interpolate(f"x${{V:-{default}}}y", {}) == f"x{default}y"


def test_interpolation_forms() -> None:
    env = {"HOST": "h", "PORT": "81", "EMPTY": "", "TRICK": "${HOST}"}
    tree = {
        "a": "http://${HOST}:${PORT}/x",
        "b": ["${EMPTY:-fallback}", "${EMPTY}", 5, True, None],
        "c": {"d": "$${HOST} stays literal"},
        "e": "${TRICK}",  # values from the environment are not expanded again
        "f": "${MISSING:-}",
    }
    assert interpolate(tree, env) == {
        "a": "http://h:81/x",
        "b": ["fallback", "", 5, True, None],
        "c": {"d": "${HOST} stays literal"},
        "e": "${HOST}",
        "f": "",
    }


def test_missing_variable_reports_its_path() -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate({"services": {"zen": {"routes": [{"path": "/${NOPE}"}]}}}, {})
    assert caught.value.path == ("services", "zen", "routes", 0, "path")
    assert str(caught.value) == (
        "services.zen.routes[0].path: environment variable NOPE is not set and has no default"
    )
