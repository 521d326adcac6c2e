"""Text that came from users, made safe to write as the App.

Label names, competition names, issue titles and config excerpts are written by people and
bots the reactor does not control. When the App repeats them in a comment, a title or a body,
they must not mention anyone, add a link or break out of their quoting (GitHub renders
comments as Markdown: https://docs.github.com/en/get-started/writing-on-github).

- :func:`code` quotes text as an inline code span, which GitHub renders literally — no
  mentions, links or emphasis inside. The fence is one backtick longer than any run in the
  text, and line breaks and control characters become spaces, so nothing can close it early
  or end its paragraph.
- :func:`safe_title` keeps a title readable but defuses ``@`` mentions with an invisible word
  joiner and drops control characters.
"""

from __future__ import annotations

import re
import unicodedata

CODE_LIMIT = 120  # characters of user text quoted in one code span
_BACKTICKS = re.compile(r"`+")
_MENTION = re.compile(r"@(?=[A-Za-z0-9_-])")
WORD_JOINER = "\u2060"


def _plain(text: str) -> str:
    """Line breaks, control and format characters (bidi overrides included) → spaces."""
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
                   for ch in text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with ``…`` where it was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def code(text: str, *, limit: int = CODE_LIMIT) -> str:
    """``text`` as a Markdown inline code span that nothing in it can escape."""
    inner = shorten(_plain(text), limit)
    if not inner.strip():
        return "`(empty)`"
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(inner)), default=0) + 1)
    if inner.startswith(("`", " ")) or inner.endswith(("`", " ")):
        inner = f" {inner} "  # CommonMark strips one space on each side
    return f"{fence}{inner}{fence}"


def safe_title(text: str) -> str:
    """A title taken from user text: one line, no control characters, no live mentions."""
    one_line = " ".join(_plain(text).split())
    return _MENTION.sub("@" + WORD_JOINER, one_line.replace(WORD_JOINER, ""))
