"""``reactor dev``'s live log: one readable line per decision, folded from audit records."""

from __future__ import annotations

from datetime import datetime, timedelta

from reactor.ops.console import Console
from reactor.store.audit import AuditRecord

AT = "2026-11-30T06:24:24.900+00:00"


def record(outcome: str, detail: str, *, delivery: str = "d1", issue: str = "7",
           rule: str = "R2", event: str = "issues") -> AuditRecord:
    return AuditRecord(at=AT, delivery=delivery, event=event, outcome=outcome,
                       action="labeled", repo="demo/agents", issue=issue, actor="executor-bot",
                       rule=rule, detail=detail)


def run(*records: AuditRecord) -> list[str]:
    console = Console()
    lines = [line for r in records for line in console.feed(r)]
    return lines + console.flush()


def test_a_revert_is_one_line_with_its_comments_reason() -> None:
    lines = run(
        record("applied", "comp:house RemoveLabel: revert: status:starting was not allowed"),
        record("applied", "comp:house Comment: R2 revert: moved #7 (executor) too early"),
        record("applied", "comp:house revert: status:starting was not allowed"),  # the delivery's
    )
    assert len(lines) == 1
    assert lines[0].split()[1:] == ["house", "reactor", "#7", "R2", "revert:", "moved", "#7",
                                    "(executor)", "too", "early"]


def test_decisions_on_different_issues_or_deliveries_are_separate_lines() -> None:
    lines = run(
        record("applied", "comp:titanic CreateIssue: hand-off from #4 (analyzer) to executor",
               issue="", rule="R9"),
        record("applied", "comp:titanic Comment: R9 hand-off from #4", issue="4", rule="R9"),
        record("applied", "comp:house RemoveLabel: `running` for longer than 10s",
               delivery="timer", event="timer", rule="R8"),
        record("applied", "comp:house AddLabel: `running` for longer than 10s",
               delivery="timer", event="timer", rule="R8"),
    )
    assert [line.split(" reactor ", 1)[1].strip() for line in lines] == [
        "R9 hand-off from #4 (analyzer) to executor",  # the comment on #4 adds nothing
        "#7   R8 `running` for longer than 10s",
    ]


def test_agents_own_moves_and_echoes_are_left_out_and_a_note_is_said_once() -> None:
    lines = run(
        record("noted", "comp:titanic accepted starting → running by @retro-bot", rule="R1"),
        record("parked", "comp:titanic judged again when the settle window ends", rule=""),
        record("skipped", "the reactor's own write", rule="R10"),
        record("noted", "comp:titanic competition titanic done", rule="R9", issue="9"),
        record("noted", "comp:titanic competition titanic done; accepted running → completed",
               rule="R9", issue="9", delivery="d2"),
    )
    assert len(lines) == 1 and lines[0].endswith("#9   R9 competition titanic done")


def test_failures_are_shown_and_user_text_cannot_move_the_cursor() -> None:
    lines = run(record("failed", "comp:house boom\x1b[2J", rule=""))
    assert len(lines) == 1 and "failed issues.labeled: boom\\x1b[2J" in lines[0]


def test_a_decision_interleaved_with_others_is_still_one_line() -> None:
    console = Console()
    later = "2026-11-30T06:24:25.100+00:00"  # 0.2 s on: still gathering
    lines = console.feed(record("applied", "comp:house RemoveLabel: revert: not allowed"))
    lines += console.feed(record("skipped", "the reactor's own write", rule="R10"))
    lines += console.feed(record("applied", "comp:titanic CreateIssue: hand-off from #4",
                                 delivery="d9", issue="", rule="R9"))
    lines += console.feed(AuditRecord(
        at=later, delivery="d1", event="issues", outcome="applied", issue="7", rule="R2",
        detail="comp:house Comment: R2 revert: moved #7 (executor) too early"))
    assert lines == []
    assert len(console.due(datetime.fromisoformat(later))) == 0
    shown = console.due(datetime.fromisoformat(later) + timedelta(seconds=1))
    assert [line.split(" reactor ", 1)[1].strip() for line in shown] == [
        "#7   R2 revert: moved #7 (executor) too early",
        "R9 hand-off from #4",
    ]
