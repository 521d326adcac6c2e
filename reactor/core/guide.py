"""The standing instruction for one stage's agent, built from the rules the reactor enforces.

Most agents are language models that read their instructions (``AGENTS.md``, a workflow's
prompt), so ``reactor agent-guide`` prints them as Markdown. The text is built from the same
data the rules use, so the two cannot drift apart: the lifecycle table of
:mod:`reactor.core.transitions` (every allowed move, annotated by :data:`MOVES`), the rule ids of
:class:`reactor.core.actions.Rule` (each answered by :data:`RULES`), the ``reactor:`` labels of
:class:`reactor.core.labels.ReactorLabel`, the title and duplicate functions of the hand-off and
R5, and the repository's :class:`~reactor.core.config.RepoConfig` (stages, agents, scopes,
maintainers, timeouts, ``start_timeout``, ``settle``, the revert cap, ``dispatch``). A test
checks that every rule id and every lifecycle move has its text here.

:data:`RULES` may hold rules SPEC §3 names that the enum does not have yet: a rule
is printed once :class:`Rule` has it, that is once the reactor enforces it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from reactor.core.actions import Rule
from reactor.core.comments import span
from reactor.core.config import Chain, DispatchMode, RepoConfig
from reactor.core.errors import ConfigError
from reactor.core.labels import ReactorLabel, Status, agent_label, comp_label
from reactor.core.rules import normalise_title
from reactor.core.rules.handoff import EVENT_TYPE, issue_title
from reactor.core.transitions import TRANSITIONS, allowed_from

S = Status
YOU = "you"
Facts = Mapping[str, str]

# Who makes each move of the lifecycle table, and when: (who, when), formatted with the facts.
MOVES: Mapping[tuple[Status, Status], tuple[str, str]] = MappingProxyType({
    (S.IDLE, S.STARTING): ("{starter}", "{start_when}"),
    (S.IDLE, S.ERROR): (YOU, "you cannot take the issue on at all; say why in a comment"),
    (S.STARTING, S.RUNNING): (YOU, "at once, when you take the issue (within {start_timeout})"),
    (S.STARTING, S.ERROR): (YOU, "you cannot begin; say why in a comment"),
    (S.STARTING, S.TIMEOUT): ("the reactor", "`starting` lasted {start_timeout} (R8)"),
    (S.RUNNING, S.COMPLETED): (YOU, "the work is done; the reactor then hands off{next_to} (R9)"),
    (S.RUNNING, S.ERROR): (YOU, "the work failed; say why in a comment"),
    (S.RUNNING, S.TIMEOUT): ("the reactor", "`running` lasted {timeout} (R8)"),
    (S.COMPLETED, S.IDLE): ("the reactor", "before it re-runs a completed stage (R9)"),
    (S.ERROR, S.IDLE): ("you or a maintainer", "the error is dealt with; the issue waits"),
    (S.ERROR, S.STARTING): ("you or a maintainer", "one retry once the cause is fixed, "
                            "never in a loop (the reactor's hand-off also restarts it)"),
    (S.TIMEOUT, S.IDLE): ("you or a maintainer", "the timeout is dealt with; the issue waits"),
    (S.TIMEOUT, S.STARTING): ("you or a maintainer", "one retry once the cause is fixed, "
                              "never in a loop (the reactor's hand-off also restarts it)"),
})

# Each rule id: (what you must do, how the reactor answers a mistake), formatted with the facts.
RULES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "R1": ("move `status:` only along the lifecycle table, and keep one `status:` label (two "
           "only between the two requests of one move)",
           "revert: your change is undone exactly, with one comment naming the rule"),
    "R2": ("enter `starting` or `running` only once every earlier stage{earlier_of} has an "
           "issue in `completed` (closed as completed counts)",
           "revert; the comment links the issue that blocks you"),
    "R3": ("never change an agent issue's `comp:` or `agent:` label{parent}; touch {scope}",
           "revert the label change{parent_back}; an issue created outside your scope is "
           "closed"),
    "R4": ("{authority}; never change another stage's status, nor any `reactor:` label",
           "revert"),
    "R5": ("one open agent issue per competition, stage and normalised title: look before "
           "you create one",
           "the newer issue is closed as a duplicate, labelled `reactor:duplicate` and linked "
           "to the original"),
    "R6": ("never create an issue for an earlier stage{earlier_of}",
           "the issue is closed, with a comment"),
    "R7": ("write no dependency that closes a cycle (`depends on #N` or `blocked by #N` in a "
           "body, GitHub's blocked-by links, stage order); an earlier stage never waits for "
           "a later one",
           "the changed issue gets `reactor:blocked` and a comment naming the cycle, lifted "
           "once one dependency is gone; a cycle formed by racing edits is broken by moving "
           "its longest-waiting issue to `status:timeout`"),
    "R8": ("stay in `running` at most {timeout} and in `starting` at most {start_timeout}",
           "the issue is moved to `status:timeout`, with one comment"),
    "R9": ("never start the next stage or create its issue: completing yours is the hand-off",
           "performed by the reactor: the next stage's issue is found or created (once) and "
           "moved to `status:starting` with the App's token"),
    "R10": ("leave the reactor's own writes alone; acting with the reactor App's token does "
            "not make a change the reactor's",
            "its own writes trigger nothing (audit only); any other change by its login is "
            "judged like yours"),
    "R11": ("stay within your budget per installation ({limits}); stop when you see "
            "`reactor:paused` on your issue",
            "your competition is paused: `reactor:paused` on its agent issues, one comment "
            "with the figures, every agent's further label change there undone (so no stage "
            "starts or hands off), until a maintainer removes the label"),
    "R12": ("never undo another actor's change again and again; if you disagree, stop and "
            "ask a human",
            "undoing each other more than {pingpong}: `reactor:needs-human` on the issue, one "
            "comment naming both actors, no further reverts there"),
})


class UnknownStage(ConfigError):
    """The stage asked for is not one of the repository's stages."""

    def __init__(self, stage: str, stages: tuple[str, ...]) -> None:
        super().__init__(f"unknown stage {stage!r}: the stages are {', '.join(stages)}")
        self.stage = stage


@dataclass(frozen=True, slots=True)
class Move:
    """One move of the lifecycle table, as the guide lists it."""

    before: Status
    after: Status
    who: str
    when: str


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One rule, as the guide's table shows it."""

    rule: Rule
    duty: str
    answer: str


def moves(facts: Facts) -> tuple[Move, ...]:
    """Every move of the lifecycle table, in its declaration order."""
    unknown = ("someone", "(not described)")
    return tuple(Move(before, after, *(part.format_map(facts)
                                        for part in MOVES.get((before, after), unknown)))
                 for before in TRANSITIONS for after in allowed_from(before))


def rule_rows(facts: Facts) -> tuple[RuleRow, ...]:
    """One row per rule the reactor enforces (the :class:`Rule` enum), in its order."""
    unknown = ("(not described)", "(not described)")
    return tuple(RuleRow(rule, *(part.format_map(facts)
                                 for part in RULES.get(rule.value, unknown)))
                 for rule in Rule)


def facts(config: RepoConfig, stage: str, comp: str | None) -> dict[str, str]:
    """The config's values for ``stage``, as the texts quote them."""
    if stage not in config.stages:
        raise UnknownStage(stage, config.stages)
    index = config.stages.index(stage)
    earlier, later = config.stages[:index], config.stages[index + 1:]
    drivers = sorted(config.agents.get(stage, ()))
    return {
        "stage": stage,
        "comp": comp or "<comp>",
        "timeout": span(config.timeout_for(stage)),
        "start_timeout": span(config.start_timeout),
        "settle": span(config.settle),
        "earlier_of": f" ({', '.join(earlier)})" if earlier else " (there is none)",
        "next_to": f" to `{later[0]}`" if later else "",
        "authority": _authority(stage, drivers),
        "starter": "you or a human" if not earlier else "the reactor",
        "start_when": "to start the competition" if not earlier else
                      f"on hand-off, when `{earlier[-1]}` completes (R9); never you",
        "scope": _scope(config, drivers, comp),
        "limits": ", ".join(b.text for b in config.limits.budgets()),
        "pingpong": f"{config.pingpong_limit} times within {span(config.pingpong_window)}",
        **_parent(config),
    }


def _parent(config: RepoConfig) -> dict[str, str]:
    """R3's words on the competition's parent issue, when the config has one."""
    if Chain.SUB_ISSUES not in config.chain:
        return {"parent": "", "parent_back": ""}
    return {"parent": ", nor take it out of its competition's parent issue "
                      "(`reactor:competition`)",
            "parent_back": "; a stage taken out of its parent is put back"}


def _authority(stage: str, drivers: list[str]) -> str:
    label = f"`{agent_label(stage)}`"
    if not drivers:
        return (f"anyone who can label issues may change `status:` on {label} issues (there "
                f"is no `agents` entry for {stage}), but change only your own")
    return f"only {' or '.join(f'`{d}`' for d in drivers)} (or a maintainer) may change " \
           f"`status:` on {label} issues"


def _scope(config: RepoConfig, drivers: list[str], comp: str | None) -> str:
    scoped = [f"`{d}`: {', '.join(sorted(config.scopes[d]))}" for d in drivers
              if d in config.scopes]
    if scoped:
        return "only the competitions in your scope (" + "; ".join(scoped) + ")"
    return f"only `{comp_label(comp)}` issues" if comp else "only your own competition's issues"


def agent_guide(config: RepoConfig, stage: str, *, comp: str | None = None,
                source: str = "the default config") -> str:
    """The standing instruction for ``stage``'s agent, as Markdown (for ``AGENTS.md``)."""
    found = facts(config, stage, comp)
    parts = (_intro(config, found, source), _moving(found), _never(found),
             _creating(found), _trouble(config, found), _rules(found))
    return "\n\n".join(parts) + "\n"


def _intro(config: RepoConfig, f: Facts, source: str) -> str:
    order = " → ".join(f"**{s}**" if s == f["stage"] else s for s in config.stages)
    wake = ("`status:starting` lands on an open issue labelled "
            f"`{agent_label(f['stage'])}` (an `issues.labeled` webhook; in GitHub Actions, "
            "`on: issues: types: [labeled]`)")
    if DispatchMode.REPOSITORY_DISPATCH in config.dispatch:
        wake += (f", or a `repository_dispatch` event of type `{EVENT_TYPE}` names your stage "
                 "(its `client_payload` names the competition, the stage and the issue)")
    return (f"# The `{f['stage']}` agent: working with issues safely\n\n"
            f"Generated by `reactor agent-guide` from {source}; the Issue Safety Reactor "
            "enforces exactly these rules.\n\n"
            f"Stages, in order: {order}. Your issues: `{agent_label(f['stage'])}` and "
            f"`{comp_label(f['comp'])}`. You react to labels only. {_identity(config, f)}\n\n"
            f"1. Start when {wake}.\n"
            f"2. Move it to `status:running` at once (within {f['start_timeout']}).\n"
            f"3. Do the work, within {f['timeout']}.\n"
            "4. Move it to `status:completed`, or to `status:error` if it failed.\n"
            f"5. That is all: the reactor checks the order and hands off{f['next_to']}.")


def _identity(config: RepoConfig, f: Facts) -> str:
    """Who may drive the stage, and a warning when the competition is outside their scope."""
    drivers = sorted(config.agents.get(f["stage"], ()))
    if not drivers:
        return "Any login that can label issues may drive this stage."
    text = f"Act as {' or '.join(f'`{d}`' for d in drivers)}: only they drive this stage."
    outside = [d for d in drivers if d in config.scopes and f["comp"] not in config.scopes[d]]
    if f["comp"] != "<comp>" and outside:
        names = " and ".join(f"`{d}`" for d in outside)
        text += (f" Note: `{f['comp']}` is outside the scope of {names}: their changes there "
                 "are reverted, and issues they create there are closed (R3).")
    return text


def _moving(f: Facts) -> str:
    rows = "\n".join(f"| `{m.before}` | `{m.after}` | {m.who} | {m.when} |" for m in moves(f))
    return ("## Moving your status label\n\n"
            f"Change `status:` only on your own `{agent_label(f['stage'])}` issues, and only "
            "as this table allows (the reactor's lifecycle; no `status:` label means `idle`). "
            "Use two requests: add the new `status:` label, then at once remove the old one. "
            "While the issue shows two status labels, or none, the reactor waits its settle "
            f"window ({f['settle']}) and reads again, so the two count as one move. One "
            "request (`PUT …/labels` with the whole set) also works, but it replaces every "
            "label, and drops one the reactor or a maintainer added meanwhile.\n\n"
            "| from | to | who | when |\n|---|---|---|---|\n" + rows)


def _never(f: Facts) -> str:
    reserved = ", ".join(f"`{label.value}`" for label in ReactorLabel)
    return ("## What you never change\n\n"
            "- The status of another stage's issue, and any issue of another competition: "
            f"touch {f['scope']}.\n"
            "- The `agent:` and `comp:` labels of an agent issue: they are set for good when "
            "it is created.\n"
            f"- The `reactor:` labels ({reserved}): they are the reactor's.\n"
            "- The next stage: never set `status:starting` on its issue and never create its "
            "issue; completing yours is the hand-off, and the reactor starts it.")


def _creating(f: Facts) -> str:
    title = issue_title(f["comp"], f["stage"], "<task>")
    example = issue_title(f["comp"], f["stage"], "Train the model!")
    return ("## Creating an issue\n\n"
            "Create issues for your own stage only. First look for an open one: list the open "
            f"issues labelled `{agent_label(f['stage'])}` and `{comp_label(f['comp'])}` (`gh "
            f"issue list --state open --label {agent_label(f['stage'])} --label "
            f"{comp_label(f['comp'])}`) and compare titles as the reactor does: case, "
            f"punctuation, spacing and the `[<comp>] <stage>:` prefix ignored (`{example}` "
            f"reads as `{normalise_title(example)}`). If one is there, work on it. Otherwise "
            f"title the new issue `{title}` and give it exactly one `agent:` and one `comp:` "
            "label.")


def _trouble(config: RepoConfig, f: Facts) -> str:
    maintainers = ", ".join(f"@{m}" for m in sorted(config.maintainers)) or \
        "a maintainer (none is configured: ask the repository's owners)"
    return ("## Errors, timeouts and handing back to a human\n\n"
            "- Report an error by status: move to `status:error` and say what failed in one "
            "comment. Do not close the issue and do not start it again in a loop.\n"
            f"- Timeouts: `running` at most {f['timeout']}, `starting` at most "
            f"{f['start_timeout']}; past them the reactor moves the issue to "
            "`status:timeout`.\n"
            "- A change the reactor undid was a mistake: read its comment and do what it "
            "says; never repeat the change. After "
            f"{config.revert_limit} reverts of one issue within {span(config.revert_window)} "
            "the reactor stops, labels it `reactor:needs-human` and mentions the maintainers.\n"
            "- Escalate instead of retrying forever: after one failed retry, leave the issue "
            f"in `status:error` and ask {maintainers} in a comment.\n"
            "- `reactor:needs-human` means a human decides: leave the issue alone until a "
            "maintainer removes the label, which hands it back. You cannot set it yourself.")


def _rules(f: Facts) -> str:
    rows = "\n".join(f"| {r.rule.value} {r.rule.name_text} | {r.duty} | {r.answer} |"
                     for r in rule_rows(f))
    return ("## How the reactor answers each mistake\n\n"
            "*Revert* undoes exactly the offending change, touches no other label and leaves "
            "one comment naming the rule, the actor and what to do instead. Maintainers may "
            "override any rule.\n\n"
            "| rule | you | the reactor's answer |\n|---|---|---|\n" + rows)
