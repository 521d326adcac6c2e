"""Reading YAML that anyone who can push wrote, within bounds, and quoting it safely.

At most :data:`MAX_BYTES` are read; the document is composed with PyYAML's safe constructors
under a node budget that counts each alias as the nodes it repeats (:data:`MAX_NODES`, so an
alias bomb is refused after ten thousand instead of expanding) and a nesting limit
(:data:`MAX_DEPTH`, so no ``RecursionError``). Whatever fails is :class:`Unreadable`, whose
message is one printable line; every value a message quotes goes through :func:`excerpt` or
:func:`one_line`, never a ``repr``. Used by :mod:`reactor.core.config`.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from yaml.composer import Composer

if TYPE_CHECKING:
    from yaml.events import AliasEvent, Event
    from yaml.nodes import Node

MAX_BYTES = 64 * 1024
MAX_NODES = 10_000  # YAML values, each alias counted as every value it repeats
MAX_DEPTH = 20
EXCERPT_CHARS = 80  # a quoted value in a message


class Unreadable(ValueError):
    """The text is not one YAML document within the bounds; the message says why."""


class _Excerpt(reprlib.Repr):
    """reprlib with tight limits: enough of a value to recognise it, never its full repr."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = 4
        self.maxstring = self.maxother = EXCERPT_CHARS
        self.maxlong = 40


_EXCERPT = _Excerpt()


def excerpt(value: object) -> str:
    """A short quotation of a value for a message: printable, ≤ EXCERPT_CHARS."""
    return one_line(_EXCERPT.repr(value), EXCERPT_CHARS)


def one_line(text: str, limit: int) -> str:
    """``text`` as one printable line of at most ``limit`` characters (ending … when cut).

    Control, format (bidi) and other invisible characters are escaped (``\\x1b``,
    ``\\u202e``), so a message can neither break a line nor reorder what a reader sees.
    """
    shown = "".join(c if c.isprintable() else _escape(c) for c in text[: limit + 1])
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _escape(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


# -- reading YAML within the limits ------------------------------------------------------------

class _BoundedComposer(Composer):
    """PyYAML's composer with a budget, checked as each node is composed.

    The budget counts an alias as every node its anchor holds, so ten levels of ten aliases
    cost ten billion and are refused after the first ten thousand, before anything is
    constructed; the depth limit keeps the composer's recursion far from Python's limit.
    """

    if TYPE_CHECKING:
        def peek_event(self) -> Event: ...

    def __init__(self) -> None:
        Composer.__init__(self)  # not super(): the loader's next __init__ needs the stream
        self._depth = 0
        self._nodes = 0
        self._weights: dict[str, int] = {}  # anchor → nodes its value holds, aliases expanded

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._charge_alias(event)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise Unreadable(f"nested more than {MAX_DEPTH} levels deep{_where(event)}")
        before = self._charge(1, event, "the file holds")
        node = super().compose_node(parent, index)
        self._depth -= 1
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._weights[anchor] = self._nodes - before
        return node

    def _charge_alias(self, event: AliasEvent) -> None:
        anchor = event.anchor
        if anchor in self.anchors and anchor not in self._weights:
            name = one_line(str(anchor), 40)
            raise Unreadable(f"alias *{name} repeats a value that holds it{_where(event)}")
        self._charge(self._weights.get(str(anchor), 1), event, "aliases expand to")

    def _charge(self, nodes: int, event: Event, what: str) -> int:
        """Add ``nodes`` to the count; the count before, or Unreadable past the budget."""
        before = self._nodes
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise Unreadable(f"{what} more than {MAX_NODES:,} values{_where(event)}")
        return before


def _where(event: Event) -> str:
    mark = event.start_mark
    return f" (line {mark.line + 1})" if mark is not None else ""


class _Reading(Protocol):
    def get_single_data(self) -> Any: ...
    def dispose(self) -> None: ...


class _PyLoader(_BoundedComposer, yaml.SafeLoader):
    """The bounded composer over PyYAML's pure-Python scanner and parser."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        _BoundedComposer.__init__(self)


_LOADER: Callable[[str], _Reading] = _PyLoader
if yaml.__with_libyaml__:
    class _CLoader(_BoundedComposer, yaml.CSafeLoader):
        """The bounded composer over libyaml's events: the same nodes, about six times faster."""

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            _BoundedComposer.__init__(self)

    _LOADER = _CLoader


def read_yaml(text: str) -> Any:
    """The one YAML document in ``text``, read within the limits, with safe constructors only.

    Whatever goes wrong is :class:`Unreadable`: PyYAML's constructors raise ValueError, KeyError
    or AttributeError for some explicit tags and impossible dates, and none of that may stop
    an evaluation.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        kib = -(-size // 1024)
        raise Unreadable(f"the file is {kib} KiB; the limit is {MAX_BYTES // 1024} KiB")
    loader: _Reading | None = None
    try:
        loader = _LOADER(text)
        return loader.get_single_data()
    except Unreadable:
        raise
    except yaml.YAMLError as error:
        raise Unreadable(_yaml_problem(error, text)) from None
    except Exception as error:  # third-party code reading text anyone can push
        problem = f"{type(error).__name__}: {one_line(str(error), 80)}"
        raise Unreadable(f"not valid YAML ({problem})") from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    if isinstance(error, yaml.reader.ReaderError):
        return f"not valid YAML at character {error.position} ({error.reason})"
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or "unreadable"
    hint = ("; quote logins that end in [bot], e.g. ['planner-bot[bot]']"
            if "[bot]" in text else "")
    return f"not valid YAML{where} ({problem}){hint}"
