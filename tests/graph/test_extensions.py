"""LogBudget: a bug that every request hits logs a few lines a minute, and counts the rest."""

from __future__ import annotations

from gateway.graph.extensions import LogBudget
from tests.clock import ManualClock


def test_at_most_per_window_lines_per_key_then_the_count_of_those_held(
        manual: ManualClock) -> None:
    budget = LogBudget(per_window=2, window=60.0, clock=manual.clock)
    assert [budget.allow(("bug",)) for _ in range(5)] == [0, 0, None, None, None]
    assert budget.allow(("other",)) == 0  # keys are apart
    manual.advance(59.0)
    assert budget.allow(("bug",)) is None
    manual.advance(1.0)
    assert budget.allow(("bug",)) == 4  # a new window: the first line says 4 were held back
    assert budget.allow(("bug",)) == 0
    assert budget.allow(("bug",)) is None


def test_keys_are_bounded(manual: ManualClock) -> None:
    budget = LogBudget(per_window=1, max_keys=3, clock=manual.clock)
    for i in range(1000):
        assert budget.allow((str(i),)) == 0
    assert len(budget._windows) == 3
