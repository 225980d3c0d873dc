"""What a route can answer: the errors declared on the functions that raise them.

An endpoint and each dependency it uses declare, with `@raises(...)` (or `declare(...)` for a
function of another module), the `StudioError` classes they can end a request with. The OpenAPI
document lists for each operation the union over its whole dependency tree
(`app.core.openapi`), so a route that gains a dependency gains its errors, and a test drives
every documented code through its route (`tests/contract/test_error_codes.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from app.core.errors import StudioError

F = TypeVar("F", bound=Callable[..., Any])
Errors = tuple[type[StudioError], ...]

_ATTRIBUTE = "__studio_raises__"
UNSAFE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))


@dataclass(frozen=True, slots=True)
class Raises:
    """Errors a function can raise; `on_writes` only for state-changing methods (CSRF)."""

    errors: Errors = ()
    on_writes: Errors = ()

    def __add__(self, other: Raises) -> Raises:
        return Raises(self.errors + other.errors, self.on_writes + other.on_writes)

    def for_method(self, method: str) -> Errors:
        """The errors a request with `method` can meet."""
        return self.errors + (self.on_writes if method.upper() in UNSAFE_METHODS else ())


def declare(func: Callable[..., Any], *errors: type[StudioError], on_writes: Errors = ()) -> None:
    """Record that `func` can raise `errors` (and `on_writes` for state-changing methods)."""
    setattr(func, _ATTRIBUTE, declared(func) + Raises(errors, on_writes))


def raises(*errors: type[StudioError], on_writes: Errors = ()) -> Callable[[F], F]:
    """Decorator form of `declare`."""

    def mark(func: F) -> F:
        declare(func, *errors, on_writes=on_writes)
        return func

    return mark


def declared(func: Callable[..., Any]) -> Raises:
    """What `func` declared (nothing when it declared nothing)."""
    found = getattr(func, _ATTRIBUTE, None)
    return found if isinstance(found, Raises) else Raises()
