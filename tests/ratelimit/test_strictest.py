"""`strictest`: which of several limits' decisions a response reports."""

from __future__ import annotations

from app.ratelimit.service import Decision, strictest


def test_of_several_refusals_the_longest_wait_is_reported() -> None:
    # Retrying after the shorter wait would only be refused again by the other limit.
    short = Decision(allowed=False, limit=5, remaining=0, reset_seconds=3)
    long = Decision(allowed=False, limit=50, remaining=0, reset_seconds=600)
    assert strictest([short, long]) is long
    assert strictest([long, short]) is long
    assert strictest([short, long]).headers()["Retry-After"] == "600"


def test_of_allowed_decisions_the_fewest_remaining_then_the_latest_reset() -> None:
    a = Decision(allowed=True, limit=10, remaining=2, reset_seconds=10)
    b = Decision(allowed=True, limit=10, remaining=2, reset_seconds=40)
    c = Decision(allowed=True, limit=10, remaining=5, reset_seconds=90)
    assert strictest([c, a, b]) is b
