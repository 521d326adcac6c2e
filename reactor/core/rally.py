"""A rally: the last change of one label on one issue, and the undos it continues (R12).

:mod:`reactor.core.rules.pingpong` plays changes on rallies; the reactor remembers each
issue's rallies as a short text (:func:`dumps`, :func:`loads`) beside the rest of its memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

MAX_LABELS = 16  # rallies kept per issue: the labels changed last
MAX_UNDOS = 32  # undo times kept per rally (the limit is a few)


@dataclass(frozen=True, slots=True)
class Rally:
    """The last change of one label on one issue: who made it (folded login), whether it
    added the label, the actor it undid (``""``: it undid nobody's change), and when each
    undo between those two happened, in a row (epoch seconds, oldest first)."""

    actor: str
    added: bool
    other: str = ""
    undos: tuple[float, ...] = ()

    def recent(self, window: timedelta) -> int:
        """Undos within ``window`` of the newest."""
        if not self.undos:
            return 0
        since = self.undos[-1] - window.total_seconds()
        return sum(1 for at in self.undos if at >= since)


Rallies = Mapping[str, Rally]  # one issue's, by label (folded name)


def dumps(rallies: Rallies) -> str:
    """One issue's rallies as the text the reactor remembers."""
    return json.dumps({name: [r.actor, int(r.added), r.other, list(r.undos)]
                       for name, r in rallies.items()}, separators=(",", ":"))


def loads(text: str | None) -> dict[str, Rally]:
    """What :func:`dumps` wrote; anything else reads as no rallies."""
    try:
        data = json.loads(text) if text else {}
        return {str(name): Rally(str(actor), bool(added), str(other),
                                 tuple(float(t) for t in undos)[-MAX_UNDOS:])
                for name, (actor, added, other, undos) in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}
