"""User text the App repeats can mention no one, add no link and break out of no quoting
(issue 11, finding 4): Hypothesis feeds the quoting and the comment builders arbitrary text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from reactor.core import comments
from reactor.core.actions import Rule
from reactor.core.rules.handoff import issue_title
from reactor.core.words import CODE_LIMIT, code, safe_title

HOSTILE = "status:x` @victim [c](https://evil.example) `"
_SPAN = re.compile(r"(?P<fence>`+)(?P<inner>.*?)(?P=fence)(?!`)", re.DOTALL)
texts = st.text(max_size=300) | st.sampled_from([
    HOSTILE, "``", "` `", "a``b`", "@victim", "\n\n@victim", "x\u202e@y", "`" * 50])


def outside_spans(markdown: str) -> str:
    """What a CommonMark renderer shows outside inline code spans (fences matched as
    CommonMark matches them: equal-length backtick runs)."""
    return _SPAN.sub(" ", markdown)


@given(texts)
def test_a_code_span_holds_any_text_on_one_line_and_nothing_escapes_it(text: str) -> None:
    quoted = code(text)
    fence = re.match(r"`+", quoted)
    assert fence is not None and quoted.endswith(fence.group(0))
    inner = quoted[len(fence.group(0)):-len(fence.group(0))]
    assert all(len(run) < len(fence.group(0)) for run in re.findall(r"`+", inner))
    assert "\n" not in quoted and "\r" not in quoted and "\u202e" not in quoted
    assert len(quoted) <= CODE_LIMIT + 2 * (len(fence.group(0)) + 1)
    assert outside_spans(quoted).strip() == ""


@given(texts)
def test_a_title_from_user_text_mentions_no_one(text: str) -> None:
    title = safe_title(text)
    assert not re.search(r"@[A-Za-z0-9_-]", title)
    assert "\n" not in title and not any(ch < " " for ch in title)


@given(texts, texts)
def test_revert_comments_quote_every_label_name(added: str, removed: str) -> None:
    body = comments.revert(issue=1, rule=Rule.R1, actor="mallory", what=f"moved {code(added)}",
                           instead="Do it right.", key="k", added=[added], removed=[removed]).body
    shown = outside_spans(body)
    assert "@victim" not in shown and "](http" not in shown
    assert shown.count("@") == 1  # the actor, whom the comment is meant to notify


def test_the_reported_label_name_is_quoted_not_rendered() -> None:
    body = comments.revert(issue=3, rule=Rule.R4, actor="mallory", what="changed a label",
                           instead="Don't.", key="k", added=[], removed=[HOSTILE]).body
    assert "@victim" not in outside_spans(body) and "evil.example" in body


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=45), st.text(max_size=400))
def test_a_hand_off_title_fits_githubs_256_characters(comp: str, task: str) -> None:
    """A competition name is at most 45 characters (a label is at most 50)."""
    title = issue_title(comp, "executor", safe_title(task))
    assert len(title) <= 256
    assert title.startswith(f"[{comp}] executor: ")
