"""Load the service registry: base YAML, stage overlay, `${VAR}` interpolation, validation.

Order matters and is fixed: parse both files, deep-merge the overlay over the base, interpolate
the merged tree (so an overlay can replace or remove a value that names a variable), validate.
Every mistake becomes a `RegistryError` naming the file(s), the dotted key and the problem.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import ValidationError

from app.core.config import Settings
from app.registry.schema import RegistryConfig
from app.registry.sources import SourceError, overlay_label, read_overlay

KeyPath = tuple[Any, ...]

# `$${` is a literal `${`; `${NAME}` or `${NAME:-default}`; a lone `${` is unterminated.
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_PLACEHOLDER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_ERRORS = 20


class RegistryError(ValueError):
    """The registry cannot be loaded; the message names the file(s), the key and the problem."""


class InterpolationError(ValueError):
    """A `${...}` that cannot be resolved, at the key path `path` of the tree."""

    def __init__(self, path: KeyPath, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{dotted(path)}: {problem}" if path else problem)


def load_registry(
    settings: Settings, *, environ: Mapping[str, str] | None = None
) -> RegistryConfig:
    """Read, merge, interpolate and validate the registry; raise `RegistryError` on any mistake."""
    base_path = settings.service_config_path
    base = _read_yaml(base_path)
    try:
        document = read_overlay(settings)
    except SourceError as exc:
        raise RegistryError(str(exc)) from None
    overlay = None if document is None else _parse_yaml(document.content, document.label)
    overlay_path = overlay_label(settings)
    label = f"{base_path} (+ {overlay_path})" if overlay is not None else str(base_path)

    merged = deep_merge(base, overlay or {})
    env = dict(interpolation_env(settings) if environ is None else environ)
    # The stage that chose the overlay is the one `${ENVIRONMENT}` must mean, wherever it came from.
    env["ENVIRONMENT"] = settings.environment
    try:
        tree = interpolate(merged, env)
    except InterpolationError as exc:
        origin = overlay_path if overlay is not None and _has_path(overlay, exc.path) else base_path
        raise RegistryError(f"{origin}: {exc}") from None
    try:
        return RegistryConfig.model_validate(tree)
    except ValidationError as exc:
        raise RegistryError(explain(exc, tree, label)) from None


def deep_merge(base: Mapping[Any, Any], overlay: Mapping[Any, Any]) -> dict[Any, Any]:
    """`overlay` over `base`: mappings merge recursively, `None` removes a key, others replace."""
    merged: dict[Any, Any] = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            below = merged.get(key)
            # Merging into {} still drops the overlay's own nulls, so none survives as a value.
            merged[key] = deep_merge(below if isinstance(below, Mapping) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def interpolate(tree: Any, env: Mapping[str, str]) -> Any:
    """A copy of `tree` whose strings have `${VAR}` and `${VAR:-default}` resolved from `env`."""
    return _interpolate(tree, env, ())


def interpolation_env(settings: Settings) -> dict[str, str]:
    """What `${VAR}` may name: Studio's env files, the real environment (which wins), the stage."""
    env: dict[str, str] = {}
    env_files = settings.model_config.get("env_file") or ()
    for name in (env_files,) if isinstance(env_files, str | Path) else env_files:
        if Path(name).is_file():
            env.update({k: v for k, v in dotenv_values(name).items() if v is not None})
    env.update(os.environ)
    env["ENVIRONMENT"] = settings.environment
    return env


def dotted(path: KeyPath) -> str:
    """`services.nexus.routes[3].path` for a key path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def explain(exc: ValidationError, tree: Any, label: str) -> str:
    """One line per validation problem: `<files>: <dotted key>: <problem>`."""
    lines = []
    errors = exc.errors(include_url=False)
    for error in errors[:_MAX_ERRORS]:
        where = dotted(_readable_loc(error["loc"], tree))
        problem = _problem(error["type"], error["msg"])
        lines.append(f"{label}: {where}: {problem}" if where else f"{label}: {problem}")
    if len(errors) > _MAX_ERRORS:
        lines.append(f"{label}: ... and {len(errors) - _MAX_ERRORS} more problems")
    return "\n".join(lines)


def _problem(kind: str, message: str) -> str:
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    return message.removeprefix("Value error, ")


def _readable_loc(loc: tuple[int | str, ...], tree: Any) -> KeyPath:
    # Pydantic puts union tags (e.g. `ssm` for an auth variant) into the location; they are not
    # keys of the file, so follow the data and keep only the parts that are.
    out: list[Any] = []
    node = tree
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, Mapping):
            if part in node:
                out.append(part)
                node = node[part]
            elif last:
                out.append(part)
            continue
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
            continue
        out.append(part)
        node = None
    return tuple(out)


def _interpolate(node: Any, env: Mapping[str, str], path: KeyPath) -> Any:
    if isinstance(node, str):
        return _substitute(node, env, path)
    if isinstance(node, Mapping):
        return {key: _interpolate(value, env, (*path, key)) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env, (*path, i)) for i, value in enumerate(node)]
    return node


def _substitute(text: str, env: Mapping[str, str], path: KeyPath) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        inner = match.group(1)
        if inner is None:
            raise InterpolationError(path, "unterminated '${' (write '$${' for a literal '${')")
        placeholder = _PLACEHOLDER.fullmatch(inner)
        if placeholder is None:
            raise InterpolationError(
                path, f"bad placeholder {token!r}: use ${{VAR}} or ${{VAR:-default}}"
            )
        name, default = placeholder.group(1), placeholder.group(2)
        value = env.get(name)
        if default is not None:
            return value or default  # like the shell: unset or empty takes the default
        if value is None:
            raise InterpolationError(
                path, f"environment variable {name} is not set and has no default"
            )
        return value

    # One pass: a value taken from the environment is never expanded again.
    return _TOKEN.sub(replace, text)


def _has_path(tree: Any, path: KeyPath) -> bool:
    node = tree
    for part in path:
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            return False
        node = node[part]
    return True


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which plain YAML would silently let win."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # `<<: *anchor` keys are overridable by design
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable key: construct_mapping reports it properly below
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> dict[Any, Any]:
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise RegistryError(f"{path}: file not found (SERVICE_CONFIG_PATH)") from None
    except OSError as exc:
        raise RegistryError(f"{path}: cannot be read: {exc.__class__.__name__}") from None
    return _parse_yaml(content, str(path))


def _parse_yaml(content: bytes, path: str) -> dict[Any, Any]:
    """One YAML document (a mapping); `path` names where it came from in errors."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: cannot be read: {exc.__class__.__name__}") from None
    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        context = f" ({exc.context})" if exc.context else ""
        raise RegistryError(f"{path}: {where}{exc.problem or 'invalid YAML'}{context}") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the top level must be a mapping, not a {type(data).__name__}")
    return data
