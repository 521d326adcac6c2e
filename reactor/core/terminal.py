"""Text that came from users, made safe to print on a terminal.

Label names, titles, logins and details are written by people and bots the reactor does not
control. Printed raw, an ESC (``\\x1b[2J``), a C1 control or a newline could redraw the screen,
forge audit lines or hide characters; a bidi override (U+202E, "Trojan Source") could make a
line read differently from what it holds. :func:`printable` spells each such character out as
a Python-style escape, so the line shows what the text really is; :func:`json_document` does
the same as ``\\uXXXX`` escapes inside a JSON document, which decodes to the original text.
This module is pure: no I/O.
"""

from __future__ import annotations

# C0 controls, DEL and C1 controls: every Unicode ``Cc`` character.
_CONTROLS = (*range(0x00, 0x20), *range(0x7F, 0xA0))
# Bidirectional controls: embeddings and overrides, isolates, marks (LRM, RLM, ALM).
_BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
# Line and paragraph separators: some terminals and viewers break the line at them.
_SEPARATORS = (0x2028, 0x2029)

UNSAFE = frozenset((*_CONTROLS, *_BIDI, *_SEPARATORS))

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _escape(code: int) -> str:
    """The Python-style escape of one code point: ``\\n``, ``\\x1b`` or ``\\u202e``."""
    if code in _NAMED:
        return _NAMED[code]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_TERMINAL = {code: _escape(code) for code in UNSAFE}
# JSON already escapes C0 controls in strings (orjson does); what is left for a document is
# DEL, the C1 controls, the bidi controls and the separators, each valid as ``\\uXXXX``.
_JSON = {code: f"\\u{code:04x}" for code in UNSAFE if code >= 0x20}


def printable(text: str) -> str:
    """``text`` with every control, bidi and line-separator character escaped, one line."""
    return text.translate(_TERMINAL)


def json_document(document: str) -> str:
    """A JSON document with the characters :func:`printable` escapes written as ``\\uXXXX``.

    Outside strings a JSON document holds only ASCII punctuation, digits and literals, so
    every such character sits inside a string, where ``\\uXXXX`` decodes to the same text.
    """
    return document.translate(_JSON)
