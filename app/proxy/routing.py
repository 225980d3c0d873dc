"""Route tables compiled once at start-up: (method, normalised tail) -> the rule that applies.

Tails arrive in the normal form of `pathguard.validate_tail`; route literals are compiled into
the same form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import get_args
from urllib.parse import quote

from app.core.errors import MethodNotAllowed
from app.proxy.errors import RouteNotFound
from app.proxy.pathguard import normal_form
from app.registry.schema import Method, Quota, RouteConfig, ServiceConfig

METHODS = frozenset(get_args(Method))
_PLACEHOLDER = re.compile(r"(\{[^{}/]*\})")
_PCHAR_SAFE = "!$&'()*+,;=:@-._~%"
# A segment matcher: literal raw bytes, None for a whole-segment `{param}`, or a regex.
Matcher = bytes | re.Pattern[bytes] | None


@dataclass(frozen=True, slots=True)
class Rule:
    """What applies to one forwarded request: permission, envelope, quota."""

    permission: str
    envelope: bool
    quota: Quota | None
    bucket: str  # rate-limit bucket of the quota
    template: str | None  # the registry's path template; None in wildcard mode
    websocket: bool = False  # an upgrade is accepted here


def _literal(text: str) -> bytes:
    # The form `validate_tail` gives request paths, so a route and a request meet as equals.
    return normal_form(quote(text, safe=_PCHAR_SAFE).encode())


def _segment_matcher(segment: str) -> Matcher:
    if _PLACEHOLDER.fullmatch(segment):
        return None
    if "{" not in segment:
        return _literal(segment)
    # re.split with a group alternates literal text and placeholders.
    pattern = b"".join(
        re.escape(_literal(part)) if i % 2 == 0 else rb"[^/]+"
        for i, part in enumerate(_PLACEHOLDER.split(segment))
    )
    return re.compile(pattern)


def _specificity(matchers: tuple[Matcher, ...]) -> tuple[int, ...]:
    # Literal segments win over patterns, patterns over placeholders, leftmost first.
    return tuple(0 if isinstance(m, bytes) else 1 if m is not None else 2 for m in matchers)


class CompiledRoutes:
    """The route table of one service; `match` never consults the registry objects again."""

    def __init__(self, service_name: str, config: ServiceConfig) -> None:
        self.service_name = service_name
        self.wildcard = config.mode == "wildcard"
        service_quota = config.quota
        self._default: dict[str, Rule] = {
            method: Rule(
                permission=config.permission_for(method),
                envelope=True,
                quota=service_quota,
                bucket=f"proxy:{service_name}",
                template=None,
                websocket=config.websocket,
            )
            for method in METHODS
        }
        self._static: dict[tuple[str, bytes], Rule] = {}
        self._dynamic: dict[tuple[str, int], list[tuple[tuple[Matcher, ...], Rule]]] = {}
        for route in config.routes:
            self._add(route, config, service_quota)
        for candidates in self._dynamic.values():
            candidates.sort(key=lambda item: _specificity(item[0]))

    def _add(self, route: RouteConfig, config: ServiceConfig, service_quota: Quota | None) -> None:
        quota = route.quota or service_quota
        rule = Rule(
            permission=route.permission or config.permission_for(route.method),
            envelope=route.envelope,
            quota=quota,
            bucket=(
                f"proxy:{self.service_name}:{route.method} {route.path}"
                if route.quota
                else f"proxy:{self.service_name}"
            ),
            template=route.path,
            websocket=route.websocket or config.websocket,
        )
        segments = route.path[1:].split("/")
        matchers = tuple(_segment_matcher(s) for s in segments)
        if all(isinstance(m, bytes) for m in matchers):
            self._static[(route.method, b"/".join(m for m in matchers if isinstance(m, bytes)))] = (
                rule
            )
        else:
            self._dynamic.setdefault((route.method, len(matchers)), []).append((matchers, rule))

    def match(self, method: str, tail: bytes) -> Rule:
        """The rule for a request, or `RouteNotFound` (explicit mode, path not listed)."""
        if method not in METHODS:
            raise MethodNotAllowed(details={"method": method})
        if self.wildcard:
            # Wildcard services still honour per-route settings (e.g. `envelope: false`).
            if self._static or self._dynamic:
                found = self._lookup(method, tail)
                if found is not None:
                    return found
            return self._default[method]
        found = self._lookup(method, tail)
        if found is None:
            raise RouteNotFound(details={"service": self.service_name, "method": method})
        return found

    def _lookup(self, method: str, tail: bytes) -> Rule | None:
        rule = self._static.get((method, tail))
        if rule is not None:
            return rule
        segments = tail.split(b"/")
        for matchers, candidate in self._dynamic.get((method, len(segments)), ()):
            if all(_fits(m, s) for m, s in zip(matchers, segments, strict=True)):
                return candidate
        return None


def _fits(matcher: Matcher, segment: bytes) -> bool:
    if matcher is None:
        return segment != b""
    if isinstance(matcher, bytes):
        return matcher == segment
    return matcher.fullmatch(segment) is not None
