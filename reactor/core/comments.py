"""Every text the reactor posts, in one place.

Each comment names the rule, the actor and what to do instead, and ends with the hidden
marker of :mod:`reactor.core.markers`, so the shell never posts it twice for the same delivery.
Mentions use ``@login`` so the actor (and, on escalation, the maintainers) is notified; those
logins come from GitHub itself. Any text users wrote (label and competition names, titles,
config excerpts) is quoted with :func:`reactor.core.words.code`, so it can mention no one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from reactor.core.actions import Comment, Rule
from reactor.core.markers import comment_marker
from reactor.core.words import code


def _comment(issue: int, rule: Rule, key: str, text: str, reason: str, *,
             tag: str | None = None) -> Comment:
    marker = comment_marker(tag or rule.value, issue, key)
    return Comment(issue=issue, body=f"{text}\n\n{marker}", marker=marker, rule=rule, reason=reason)


def _labels(names: Iterable[str]) -> str:
    return ", ".join(code(name) for name in sorted(names))


def _hand_back(maintainers: Iterable[str]) -> str:
    mentions = " ".join(f"@{login}" for login in sorted(maintainers)) or "A maintainer"
    return (f"{mentions}: please settle its labels by hand, then remove "
            f"`reactor:needs-human` to hand the issue back to the reactor.")


def heading(rule: Rule) -> str:
    return f"**{rule.value} {rule.name_text}**"


def revert(*, issue: int, rule: Rule, actor: str, what: str, instead: str, key: str,
           added: Iterable[str], removed: Iterable[str]) -> Comment:
    """The one comment left by a revert: what broke the rule, what was undone, what to do."""
    undone = [f"removed {_labels(removed)}" if removed else "",
              f"restored {_labels(added)}" if added else ""]
    undo = " and ".join(part for part in undone if part) or "changed nothing"
    text = (f"{heading(rule)}: @{actor} {what}.\n\n"
            f"The reactor undid this change ({undo}). {instead}")
    return _comment(issue, rule, key, text, f"{rule.value} revert: {what}")


def escalation(*, issue: int, rule: Rule, actor: str, what: str, reverts: int,
               maintainers: Iterable[str], key: str) -> Comment:
    """Posted once when the revert-war cap stops the reactor."""
    text = (f"{heading(rule)}: @{actor} {what}, and this issue was already reverted "
            f"{reverts} time(s) recently. The reactor stops reverting it and labels it "
            f"`reactor:needs-human`.\n\n{_hand_back(maintainers)}")
    return _comment(issue, rule, key, text, f"{rule.value} escalated: {what}", tag="needs-human")


def paused(*, issue: int, actor: str, figures: Iterable[tuple[int, str, str]], comp: str,
           maintainers: Iterable[str], key: str) -> Comment:
    """Posted once when an actor over its budget pauses its competition (R11)."""
    over = "; ".join(f"{count} {kind} (budget: {budget})" for count, kind, budget in figures)
    mentions = " ".join(f"@{login}" for login in sorted(maintainers)) or "A maintainer"
    text = (f"{heading(Rule.R11)}: @{actor} is over its budget in this installation: {over}. "
            f"The reactor paused competition {code(comp)}: its agent issues are labelled "
            f"`reactor:paused`, and every agent's further change to their labels is undone, "
            f"so no stage starts or hands off.\n\n{mentions}: once the agent is fixed, remove "
            f"`reactor:paused` from one of them to resume the competition.")
    return _comment(issue, Rule.R11, key, text, f"R11 paused: @{actor} {over}", tag="paused")


def pingpong(*, issue: int, first: str, second: str, label: str, undos: int,
             window: timedelta, maintainers: Iterable[str], key: str) -> Comment:
    """Posted once when two actors' undoing of each other's change is stopped (R12)."""
    what = (f"@{first} and @{second} undid each other's change of {code(label)} {undos} times "
            f"within {span(window)}")
    text = (f"{heading(Rule.R12)}: {what}. Each move may be allowed on its own; together they "
            f"are a loop. The reactor labels this issue `reactor:needs-human` and stops "
            f"acting on it.\n\n{_hand_back(maintainers)}")
    return _comment(issue, Rule.R12, key, text, f"R12 escalated: {what}", tag="needs-human")


def repaired(*, issue: int, rule: Rule, found: str, done: str, instead: str,
             key: str) -> Comment:
    """Posted when reconcile repairs a rule broken in an issue's state, with no change to
    undo (its webhooks never came): it names no actor, since it cannot know one."""
    text = f"{heading(rule)}: the reactor found {found}.\n\n{done} {instead}"
    return _comment(issue, rule, key, text, f"{rule.value} repaired: {found}")


def unclear(*, issue: int, rule: Rule, found: str, what: str, maintainers: Iterable[str],
            key: str) -> Comment:
    """Posted once when reconcile finds a state it cannot repair by itself: several
    ``what`` on one issue, and nothing (memory, title, lifecycle) that tells which is right."""
    text = (f"{heading(rule)}: the reactor found {found}, and nothing tells it which of these "
            f"{what} is right. It labels this issue `reactor:needs-human`.\n\n"
            f"{_hand_back(maintainers)}")
    return _comment(issue, rule, key, text, f"{rule.value} needs a human: {found}",
                    tag="needs-human")


def closed(*, issue: int, rule: Rule, actor: str, what: str, instead: str, key: str) -> Comment:
    """Posted on an issue the reactor closes as not planned (R3 scope, R6 reverse)."""
    text = f"{heading(rule)}: @{actor} {what}.\n\nThe reactor closed this issue. {instead}"
    return _comment(issue, rule, key, text, f"{rule.value} close: {what}")


def parent_restored(*, issue: int, parent: int, actor: str, key: str) -> Comment:
    """Posted on a stage's issue put back under its competition's parent issue (R3)."""
    text = (f"{heading(Rule.R3)}: @{actor} took #{issue} out of #{parent}, the parent issue "
            f"of its competition.\n\nThe reactor put it back: a stage's issue stays a "
            f"sub-issue of its competition's parent. A maintainer may move it.")
    return _comment(issue, Rule.R3, key, text, f"R3 restore: #{issue} back under #{parent}",
                    tag="parent")


def duplicate(*, issue: int, original: int, actor: str, key: str) -> Comment:
    """Posted on the newer of two duplicate agent issues (R5)."""
    text = (f"{heading(Rule.R5)}: @{actor} this issue duplicates #{original} (same "
            f"competition, stage and title). The reactor closed it as a duplicate; "
            f"continue on #{original}, or give this one a different title and reopen it.")
    return _comment(issue, Rule.R5, key, text, f"R5 duplicate of #{original}")


def handoff(*, issue: int, completed: int, stage: str, target: str, key: str,
            rerun: bool = False) -> Comment:
    """Posted on hand-off (R9): links the completed issue and the next stage's issue."""
    again = " again (a re-run: it had completed before)" if rerun else ""
    text = (f"{heading(Rule.R9)}: #{completed} ({stage}) completed; {target} "
            f"is now `status:starting`{again}.")
    return _comment(issue, Rule.R9, key, text, f"R9 hand-off from #{completed}")


def handoff_blocked(*, issue: int, target: int, stage: str, problem: str, key: str) -> Comment:
    """Posted on the completed issue when the next stage's issue cannot be started (R9)."""
    text = (f"{heading(Rule.R9)}: this stage completed, but the reactor cannot start the "
            f"{stage} stage: {problem}. The competition waits until that is settled.")
    return _comment(issue, Rule.R9, key, text, f"R9 hand-off to #{target} blocked",
                    tag="handoff-blocked")


def conflict(*, issue: int, rule: Rule, maintainers: Iterable[str], key: str) -> Comment:
    """Posted once when an issue kept changing under the reactor past its retry budget."""
    text = (f"{heading(rule)}: this issue kept changing while the reactor was acting on it, "
            f"so it stopped after several attempts and labels it `reactor:needs-human`.\n\n"
            f"{_hand_back(maintainers)}")
    return _comment(issue, rule, key, text, f"{rule.value} conflict escalated", tag="needs-human")


def config_problem(*, issue: int, problem: str, key: str) -> Comment:
    """Posted once per malformed config text, on the newest agent issue (SPEC §3)."""
    text = (f"**Configuration**: {code(problem, limit=400)}\n\nThe reactor keeps using the "
            f"last configuration that parsed (or the defaults) until `.github/reactor.yml` "
            f"is fixed.")
    return _comment(issue, Rule.R1, key, text, "config problem reported", tag="config")


def handoff_failed(*, issue: int, problem: str, maintainers: Iterable[str], key: str) -> Comment:
    """Posted on the completed issue when a hand-off failed for good and was undone (R9)."""
    text = (f"{heading(Rule.R9)}: this stage completed, but the hand-off to the next stage "
            f"failed for good ({code(problem, limit=200)}); the reactor undid the steps it had "
            f"taken and labels this issue `reactor:needs-human`.\n\n{_hand_back(maintainers)}")
    return _comment(issue, Rule.R9, key, text, "R9 hand-off failed and undone",
                    tag="handoff-failed")


def _path(members: Iterable[int]) -> str:
    """``#a → #b → #a``: a cycle's members in order, back to the first."""
    numbers = list(members)
    return " → ".join(f"#{n}" for n in [*numbers, *numbers[:1]])


def span(duration: timedelta) -> str:
    """A duration in the config's units, to the second: ``4h``, ``1h 30m``, ``45s``."""
    seconds = max(int(duration.total_seconds()), 0)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def dependency_link(*, waiter: int, waited: int, native: bool, phrase: str | None,
                    order: tuple[str, str, str] | None) -> str:
    """One line of a cycle comment: why ``waiter`` waits for ``waited``.

    ``phrase`` is the body's own words (quoted); ``order`` is (competition, the waiter's
    stage, the waited-for stage) when stage order makes it wait."""
    reasons = []
    if native:
        reasons.append(f"GitHub lists #{waited} under its *blocked by* issues")
    if phrase:
        reasons.append(f"its body says {code(phrase)}")
    if order:
        comp, stage, earlier = order
        reasons.append(f"stage {code(stage)} comes after {code(earlier)} in competition "
                       f"{code(comp)}")
    return f"- #{waiter} waits for #{waited}: {'; '.join(reasons)}"


def reverse_dependency(*, waiter: int, stage: str, waited: int, later: str, comp: str) -> str:
    """The sentence naming a reverse dependency (an earlier stage waiting on a later one)."""
    return (f"#{waiter} ({code(stage)}) waits for #{waited} ({code(later)}), a later stage "
            f"of competition {code(comp)}: a reverse dependency. Work flows forward only.")


def _cycle_text(links: Iterable[str], reverse: str | None) -> str:
    lines = "\n".join(links)
    return f"{lines}\n\n{reverse}" if reverse else lines


def cycle(*, issue: int, members: Iterable[int], links: Iterable[str], reverse: str | None,
          actor: str, key: str) -> Comment:
    """Posted on the issue whose change closed a dependency cycle (R7): the change is refused."""
    numbers = list(members)
    path = _path(numbers)
    text = (f"{heading(Rule.R7)}: @{actor} changed #{issue}, and that closes a dependency "
            f"cycle: {path}.\n\n{_cycle_text(links, reverse)}\n\n"
            f"The reactor refuses the change and labels #{issue} `reactor:blocked`: issues "
            f"that wait on each other never finish. Remove one of these dependencies (the "
            f"`depends on` / `blocked by` line of a body, or the issue's *Relationships* on "
            f"GitHub) and the reactor lifts the label.")
    return _comment(issue, Rule.R7, key, text, f"R7 refused: cycle {path}")


def cycle_broken(*, issue: int, members: Iterable[int], links: Iterable[str],
                 reverse: str | None, status: str | None, since: datetime, moved: bool,
                 key: str) -> Comment:
    """Posted on the issue the periodic check picked to break a cycle that formed (R7).

    ``moved``: it went to ``status:timeout``; otherwise its status (None: no single one)
    cannot move there, and it was labelled ``reactor:blocked`` instead."""
    numbers = list(members)
    path = _path(numbers)
    state = f"`status:{status}`" if status else "with no single status"
    waited = (f"#{issue} has waited longest in the cycle ({state} since "
              f"{since.strftime('%Y-%m-%d %H:%M:%S %Z').strip()}), so")
    if moved:
        outcome = (f"{waited} the reactor moved it to `status:timeout` to break the cycle. "
                   f"Remove one of these dependencies, then restart #{issue} with "
                   f"`status:starting` (its agent or a maintainer).")
    else:
        outcome = (f"{waited} the reactor would move it to `status:timeout`, but from "
                   f"{f'`{status}`' if status else 'there'} the lifecycle does not allow it; "
                   f"it labels #{issue} `reactor:blocked` instead. Remove one of these "
                   f"dependencies and the reactor lifts the label.")
    text = (f"{heading(Rule.R7)}: these issues wait on each other: {path}.\n\n"
            f"{_cycle_text(links, reverse)}\n\n{outcome}")
    return _comment(issue, Rule.R7, key, text, f"R7 broke cycle {path} at #{issue}")


def timed_out(*, issue: int, stage: str, status: str, waited: timedelta, limit: timedelta,
              setting: str, key: str) -> Comment:
    """Posted when an issue stayed in ``starting`` or ``running`` past its limit (R8).

    ``setting`` is the config key that sets the limit (``timeouts.executor``,
    ``start_timeout``)."""
    text = (f"{heading(Rule.R8)}: #{issue} ({code(stage)}) stayed in `status:{status}` for "
            f"{span(waited)}, past its limit of {span(limit)} ({code(setting)} in "
            f"`.github/reactor.yml`). The reactor moved it to `status:timeout`.\n\n"
            f"To go on, the agent restarts it with `status:starting`; a maintainer may do "
            f"the same, or reset it to `status:idle`.")
    return _comment(issue, Rule.R8, key, text, f"R8 {status} past {span(limit)}")
