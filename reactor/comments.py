"""Every text the reactor posts, in one place.

Each comment names the rule, the actor and what to do instead, and ends with the hidden
marker of :mod:`reactor.markers`, so the shell never posts it twice for the same delivery.
Mentions use ``@login`` so the actor (and, on escalation, the maintainers) is notified; those
logins come from GitHub itself. Any text users wrote (label and competition names, titles,
config excerpts) is quoted with :func:`reactor.words.code`, so it can mention no one.
"""

from __future__ import annotations

from collections.abc import Iterable

from reactor.actions import Comment, Rule
from reactor.markers import comment_marker
from reactor.words import code


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


def closed(*, issue: int, rule: Rule, actor: str, what: str, instead: str, key: str) -> Comment:
    """Posted on an issue the reactor closes as not planned (R3 scope, R6 reverse)."""
    text = f"{heading(rule)}: @{actor} {what}.\n\nThe reactor closed this issue. {instead}"
    return _comment(issue, rule, key, text, f"{rule.value} close: {what}")


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
