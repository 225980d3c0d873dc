"""`make mutate`'s planted-bug table stays true to the code: every snippet occurs exactly once in
its file and every named test file exists, so the nightly run never reports a stale mutant."""

from __future__ import annotations

from tools.mutate.__main__ import check_table
from tools.mutate.table import MUTANTS


def test_every_planted_bug_still_applies() -> None:
    assert list(check_table(MUTANTS)) == []


def test_ids_are_unique_and_every_mutant_names_its_tests() -> None:
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids))
    assert all(m.tests or m.equivalent for m in MUTANTS)
