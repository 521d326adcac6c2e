"""The rules of SPEC §3 as pure functions; :func:`evaluate` is the one entry point.

One module per rule family — :mod:`~reactor.core.rules.lifecycle` (R1),
:mod:`~reactor.core.rules.order` (R2), :mod:`~reactor.core.rules.isolation` (R3),
:mod:`~reactor.core.rules.authority` (R4),
:mod:`~reactor.core.rules.duplicates` (R5), :mod:`~reactor.core.rules.reverse` (R6),
:mod:`~reactor.core.rules.handoff` (R9), :mod:`~reactor.core.rules.pingpong` (R12) — composed in
:mod:`~reactor.core.rules.engine`.
"""

from reactor.core.rules._base import inert
from reactor.core.rules.duplicates import normalise_title
from reactor.core.rules.engine import evaluate, reads_links, seed_accepted
from reactor.core.rules.handoff import creation_key, task_of

__all__ = ["creation_key", "evaluate", "inert", "normalise_title", "reads_links",
           "seed_accepted", "task_of"]
