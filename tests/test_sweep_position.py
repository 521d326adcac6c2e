"""Where an installation's sweep stands (its cursor) and its budget of GitHub calls."""

from __future__ import annotations

from reactor.shell.budget import WRITE_RESERVE, Budget, Position


def test_a_position_passes_what_an_earlier_run_swept_and_nothing_after() -> None:
    at = Position(20, "house", after=7)
    assert at.passed(10) and not at.passed(20) and not at.passed(30)
    assert at.passed(20, "alpha") and not at.passed(20, "house")
    assert not at.passed(20, "zebra") and not at.passed(30, "alpha")
    assert at.resume_after(20, "house") == 7 and at.resume_after(20, "zebra") == 0
    fresh = Position(20)  # the repository has not begun
    assert not fresh.passed(20, "alpha") and not fresh.passed(20)


def test_a_position_survives_redis_and_anything_else_there_starts_afresh() -> None:
    at = Position(20, "a b:c", after=7)
    assert Position.loads(at.dumps().encode()) == at
    assert Position.loads(b"not json") is None
    assert Position.loads(b'{"repo": 1}') is None
    assert Position.loads(b"[1, 2]") is None
    assert Position.loads(b"[1, 2, 3, 4]") is None


def test_a_budget_keeps_a_reserve_for_writes() -> None:
    budget = Budget(limit=WRITE_RESERVE + 3)
    budget.spent = 2
    assert budget.allows() and not budget.allows(2)
    assert Budget().allows(10**9)  # reactor reconcile by hand: no bound


def test_a_position_inside_a_repositorys_listing_orders_its_windows_before_names() -> None:
    at = Position(20, "house", after=7, page=36)  # the window that begins at page 36
    assert at.first_page(20) == 36 and at.first_page(30) == 1
    assert at.passed(20, "zebra", page=1)  # an earlier window, whatever the name
    assert at.passed(20, "alpha", page=36) and not at.passed(20, "zebra", page=36)
    assert not at.passed(20, "alpha", page=71)
    assert at.resume_after(20, "house", page=36) == 7 and at.resume_after(20, "house") == 0
    assert Position.loads(at.dumps()) == at
    assert Position.loads(b'[20, "house", 7]') == Position(20, "house", 7)  # an older cursor


def test_a_listing_window_leaves_most_of_a_run_for_its_competitions() -> None:
    assert Budget().window() is None  # reactor reconcile by hand: the whole listing at once
    assert Budget(limit=WRITE_RESERVE + 400).window() == 100
    assert Budget(limit=WRITE_RESERVE + 3).window() == 1  # always a page: runs progress
