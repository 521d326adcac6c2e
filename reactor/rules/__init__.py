"""The rules of SPEC §3 as pure functions; :func:`evaluate` is the one entry point.

One module per rule family — :mod:`~reactor.rules.lifecycle` (R1), :mod:`~reactor.rules.order`
(R2), :mod:`~reactor.rules.isolation` (R3), :mod:`~reactor.rules.authority` (R4),
:mod:`~reactor.rules.duplicates` (R5), :mod:`~reactor.rules.reverse` (R6),
:mod:`~reactor.rules.handoff` (R9) — composed in :mod:`~reactor.rules.engine`.
"""

from reactor.rules._base import inert
from reactor.rules.duplicates import normalise_title
from reactor.rules.engine import evaluate, reads_links, seed_accepted
from reactor.rules.handoff import creation_key, task_of

__all__ = ["creation_key", "evaluate", "inert", "normalise_title", "reads_links",
           "seed_accepted", "task_of"]
