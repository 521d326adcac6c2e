"""What the demo plays: its repository config, its two competitions and its mistakes.

Each mistake is made once, by a named sandbox user, when a competition reaches a given point,
and each is one the reactor must undo:

- ``duplicate`` (R5): the titanic planner opens its issue a second time.
- ``cross-competition`` (R3): someone adds ``comp:house`` to titanic's completed planner issue.
- ``hang`` (R8): house's executor, once handed its issue, moves it to ``running`` and never
  reports back; after ``timeouts.executor`` the reactor moves it to ``timeout`` and the agent
  starts over.
- ``early start`` (R2): meanwhile house's monitor opens its issue and starts it, though the
  executor has not completed. (A start made just before the earlier stage completes, judged
  with that completion in one settle window, counts as in order: so the demo jumps ahead of
  a stage that is stuck, where the mistake is plain.)
- ``unauthorised`` (R4): while that executor hangs, ``mallory`` (no agent of the stage, no
  maintainer) marks its issue ``completed``.
- ``ping-pong`` (R12): titanic's executor and monitor agents disagree about a
  ``needs-review`` label on the planner issue and take turns adding and removing it; after
  the fifth undo the reactor hands the issue to a human, and the maintainer, having settled
  it, hands it back.
- ``runaway`` (R11): once titanic is done, ``triage-bot`` (a helper bot no stage depends on,
  so house goes on undisturbed) goes haywire and flips a ``priority:`` label on titanic's
  retrospective issue as fast as it can, past the default budget of 30 moves a minute; the
  reactor pauses titanic (and undoes what comes after) until the maintainer resumes it. The
  bot stops when it sees ``reactor:paused``, as a well-behaved agent should; its flips still
  queued when the maintainer resumes titanic were made before the resume, so they are
  forgiven and titanic stays resumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

STAGES = ("planner", "analyzer", "executor", "monitor", "retrospective")
AGENTS = {
    "planner": "planner-bot",
    "analyzer": "analyzer-bot",
    "executor": "executor-bot",
    "monitor": "monitor-bot",
    "retrospective": "retro-bot",
}
MAINTAINER = "octocat"
INTRUDER = "mallory"
RUNAWAY = "triage-bot"
EXECUTOR_TIMEOUT_S = 10

CONFIG = f"""\
# The demo's config: five stages, one agent each, and a short executor timeout so that
# the hung executor is timed out while you watch.
stages: [{", ".join(STAGES)}]
timeouts: {{executor: {EXECUTOR_TIMEOUT_S}s}}
settle: 1s
agents:
{chr(10).join(f"  {stage}: [{login}]" for stage, login in AGENTS.items())}
maintainers: [{MAINTAINER}]
"""


@dataclass(frozen=True)
class Competition:
    name: str
    task: str
    delay_s: float  # after the demo starts


COMPETITIONS = (
    Competition("titanic", "predict who survives", 0.0),
    Competition("house", "price the houses", 2.0),
)


class Mistake(StrEnum):
    DUPLICATE = "duplicate"
    CROSS_COMPETITION = "cross-competition"
    EARLY_START = "early start"
    HANG = "hang"
    UNAUTHORISED = "unauthorised"
    PING_PONG = "ping-pong"
    RUNAWAY = "runaway"


@dataclass(frozen=True)
class Moment:
    """A point a competition reaches: its ``stage`` issue labelled ``status:<status>``."""

    comp: str
    stage: str
    status: str


# When each mistake is made (the hang is the executor's own behaviour, see ``HANGS``).
TRIGGERS = {
    Moment("titanic", "planner", "running"): Mistake.DUPLICATE,
    Moment("titanic", "analyzer", "running"): Mistake.CROSS_COMPETITION,
    Moment("house", "executor", "running"): Mistake.EARLY_START,
    Moment("titanic", "executor", "running"): Mistake.PING_PONG,
    Moment("titanic", "retrospective", "completed"): Mistake.RUNAWAY,
}
HANGS = frozenset({("house", "executor")})  # (competition, stage) whose first run hangs
UNAUTHORISED_AFTER_S = 2.0  # into the hang
PING_PONG_LABEL = "needs-review"
PING_PONG_TURNS = 6  # five undos: one more than the default limit (R12)
PING_PONG_GAP_S = 0.4
RUNAWAY_LABEL = "priority:high"
RUNAWAY_MOVES = 60  # at most: twice the default budget of 30 moves a minute

# How long an honest agent "works": before ``running`` and before ``completed``.
START_S = 0.8
WORK_S = 1.5


def issue_title(comp: str, stage: str, task: str) -> str:
    return f"[{comp}] {stage}: {task}"
