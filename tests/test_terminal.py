"""User text printed to a terminal shows what it holds and cannot drive the terminal."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from reactor.core.terminal import UNSAFE, json_document, printable

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_escape_sequences_and_c1_controls_are_spelled_out() -> None:
    assert printable("\x1b[31mstatus:x\x1b[0m") == "\\x1b[31mstatus:x\\x1b[0m"
    assert printable("a\x9bb\x7fc\x00") == "a\\x9bb\\x7fc\\x00"


def test_newlines_cannot_forge_a_second_line() -> None:
    assert printable("ok\n2025-01-01  applied\r\t") == "ok\\n2025-01-01  applied\\r\\t"


def test_every_bidi_control_and_line_separator_is_escaped() -> None:
    escaped = printable(BIDI + "\u2028\u2029")
    assert escaped == "".join(f"\\u{ord(c):04x}" for c in BIDI + "\u2028\u2029")


def test_ordinary_text_is_left_alone() -> None:
    text = "comp:titanic · agent:planner — naïve 日本語 👩‍💻 \\x1b"
    assert printable(text) == text


@given(st.text())
def test_printable_output_holds_no_unsafe_character(text: str) -> None:
    assert not UNSAFE & {ord(c) for c in printable(text)}


@given(st.text())
def test_a_json_document_decodes_to_the_same_text_and_holds_no_unsafe_character(
    text: str,
) -> None:
    document = json_document(orjson.dumps({"label": text}).decode())
    assert not UNSAFE & {ord(c) for c in document}
    assert orjson.loads(document) == {"label": text}


def test_pretty_printed_json_keeps_its_layout() -> None:
    document = '{\n\t"a": "\u202e\x85"\n}'
    assert json_document(document) == '{\n\t"a": "\\u202e\\u0085"\n}'
