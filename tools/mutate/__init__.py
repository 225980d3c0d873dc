"""`make mutate`: plant each bug of `table.MUTANTS` in a copy of the checkout, run its tests.

A mutant is killed when its tests fail, survives when they pass, and is stale when its snippet
does not occur exactly once (the table must then be fixed). The working tree is never touched.
"""
