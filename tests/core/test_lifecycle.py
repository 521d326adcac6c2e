"""R1's table: every one of the 36 (from, to) pairs, allowed or not."""

from __future__ import annotations

import itertools

import pytest

from reactor.core.errors import ReactorError
from reactor.core.labels import Status
from reactor.core.transitions import (
    TRANSITIONS,
    InvalidTransition,
    allowed_from,
    check_transition,
    is_allowed,
)

S = Status
ALLOWED = {
    (S.IDLE, S.STARTING), (S.IDLE, S.ERROR),
    (S.STARTING, S.RUNNING), (S.STARTING, S.ERROR), (S.STARTING, S.TIMEOUT),
    (S.RUNNING, S.COMPLETED), (S.RUNNING, S.ERROR), (S.RUNNING, S.TIMEOUT),
    (S.COMPLETED, S.IDLE),
    (S.ERROR, S.IDLE), (S.ERROR, S.STARTING),
    (S.TIMEOUT, S.IDLE), (S.TIMEOUT, S.STARTING),
}
PAIRS = list(itertools.product(Status, repeat=2))


def test_there_are_36_pairs_and_13_moves() -> None:
    assert len(PAIRS) == 36
    assert sum(len(targets) for targets in TRANSITIONS.values()) == len(ALLOWED) == 13


@pytest.mark.parametrize(("before", "after"), PAIRS)
def test_every_pair_is_judged_by_the_table(before: Status, after: Status) -> None:
    """Moves in the table pass; staying put is no move and passes; all else raises."""
    expected = (before, after) in ALLOWED or before == after
    assert is_allowed(before, after) is expected
    if expected:
        check_transition(before, after)
    else:
        with pytest.raises(InvalidTransition) as caught:
            check_transition(before, after)
        assert (caught.value.before, caught.value.after) == (before, after)
        assert isinstance(caught.value, ReactorError)
        assert f"{before} → {after} is not allowed" in str(caught.value)


def test_allowed_from_lists_moves_in_declaration_order() -> None:
    assert allowed_from(S.RUNNING) == (S.COMPLETED, S.ERROR, S.TIMEOUT)
    assert allowed_from(S.COMPLETED) == (S.IDLE,)


def test_the_table_cannot_be_edited_at_run_time() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[S.IDLE] = frozenset()  # type: ignore[index]
