"""Label names parsed once into typed values; the canonical label set."""

from __future__ import annotations

import re

import pytest

from reactor.core.config import DEFAULT_STAGES
from reactor.core.labels import (
    MAX_LABEL_LENGTH,
    LabelKind,
    LabelSet,
    ReactorLabel,
    Status,
    canonical_labels,
    comp_label_spec,
    parse_label,
)

K = LabelKind


@pytest.mark.parametrize(
    ("name", "kind", "value"),
    [
        ("status:running", K.STATUS, "running"),
        ("Status: Running ", K.STATUS, "running"),
        ("STATUS:IDLE", K.STATUS, "idle"),
        ("status:done", K.STATUS, "done"),
        ("agent:executor", K.AGENT, "executor"),
        ("comp:Titanic", K.COMP, "titanic"),
        ("priority:high", K.PRIORITY, "high"),
        ("reactor:needs-human", K.REACTOR, "needs-human"),
        ("bug", K.OTHER, "bug"),
        ("Help Wanted", K.OTHER, "help wanted"),
        ("area:ui", K.OTHER, "area:ui"),
        ("comp:", K.INVALID, ""),
        ("status:  ", K.INVALID, ""),
        ("x" * (MAX_LABEL_LENGTH + 1), K.INVALID, ""),
        ("comp:" + "y" * 60, K.INVALID, ""),
    ],
)
def test_labels_parse_by_prefix_folding_case_and_spaces(
    name: str, kind: LabelKind, value: str
) -> None:
    parsed = parse_label(name)
    assert (parsed.kind, parsed.value, parsed.name) == (kind, value, name)


def test_a_50_character_name_is_still_read() -> None:
    name = "comp:" + "z" * (MAX_LABEL_LENGTH - 5)
    assert parse_label(name).kind is K.COMP


def test_status_value_is_typed_only_for_known_states() -> None:
    assert parse_label("status:timeout").status is Status.TIMEOUT
    assert parse_label("status:done").status is None
    assert parse_label("agent:running").status is None
    assert Status.COMPLETED.label == "status:completed"


def test_label_set_exposes_statuses_unknowns_and_exact_names() -> None:
    labels = LabelSet.parse(["Status:Running", "status:error", "status:oops", "comp:a", "x" * 60])
    assert labels.statuses == {Status.RUNNING, Status.ERROR}
    assert labels.unknown_statuses == ("status:oops",)
    assert labels.names(K.STATUS, "running") == ("Status:Running",)
    assert labels.values(K.COMP) == {"a"}
    assert labels.invalid == ("x" * 60,)
    assert labels.has(K.COMP, "a") and not labels.has(K.COMP, "b")


def test_canonical_labels_cover_statuses_stages_and_reactor_labels() -> None:
    specs = canonical_labels(DEFAULT_STAGES)
    names = [spec.name for spec in specs]
    assert len(names) == len(set(names)) == len(Status) + 5 + len(ReactorLabel)
    assert {f"status:{s}" for s in Status} <= set(names)
    assert {f"agent:{s}" for s in DEFAULT_STAGES} <= set(names)
    assert {label.value for label in ReactorLabel} <= set(names)
    for spec in specs:
        assert re.fullmatch(r"[0-9a-f]{6}", spec.color), spec
        assert spec.description and len(spec.description) <= 100
        assert len(spec.name) <= MAX_LABEL_LENGTH
        assert parse_label(spec.name).kind is not K.INVALID


def test_comp_label_spec_names_the_competition() -> None:
    spec = comp_label_spec("titanic")
    assert spec.name == "comp:titanic" and "titanic" in spec.description
