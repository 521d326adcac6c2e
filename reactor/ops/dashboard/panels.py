"""The dashboard's panels drawn from a repository's newest audit records: which competitions are
stuck and why, the last hour (decisions per minute, hand-off latency) and "Recent decisions". HTML
fragments, every text escaped; the figures come from the pure :mod:`reactor.ops.dashboard.standing`,
:mod:`reactor.ops.dashboard.pulse` and :mod:`reactor.ops.dashboard.recent`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html import escape

from reactor.ops.dashboard import charts, pulse, recent
from reactor.ops.dashboard.recent import Kind
from reactor.ops.dashboard.standing import Stuck
from reactor.store.audit import AuditRecord

DETAIL_CHARS = 500  # of a decision's text
STUCK_SHOWN = 12  # competitions listed as stuck
REASONS_SHOWN = 4  # reasons listed per stuck competition
ROWS_SHOWN = 14  # the newest decisions listed
PRESSING_KEPT = 8  # older undone or escalated decisions listed besides
Link = Callable[[int], str | None]


def a(text: str, href: str | None, *, css: str = "") -> str:
    """``text`` linked to ``href`` (in a new tab, sending no referrer), or a plain span."""
    cls = f' class="{css}"' if css else ""
    if href is None:
        return f"<span{cls}>{escape(text)}</span>"
    return f'<a{cls} href="{escape(href)}" target="_blank" rel="noreferrer">{escape(text)}</a>'


def _linked(text: str, issue: int | None, link: Link) -> str:
    """``text`` escaped, with its first ``#<issue>`` linked to the issue."""
    mark = f"#{issue}"
    if issue is None or mark not in text:
        return escape(text)
    before, _, after = text.partition(mark)
    return escape(before) + a(mark, link(issue)) + escape(after)


def stuck_panel(found: Sequence[Stuck], *, competitions: int, link: Link) -> str:
    """The stuck competitions, the most pressing first, each with its reasons."""
    if not found:
        each = f"each of the {competitions:,} competitions" if competitions != 1 else \
            "the competition"
        said = f": {each} is done or moving" if competitions else ""
        return f'<p class="ok">Nothing stuck{said}.</p>'
    items = []
    for s in found[:STUCK_SHOWN]:
        reasons = "".join(f'<li class="r{r.rank}">{_linked(r.text, r.issue, link)}</li>'
                          for r in s.reasons[:REASONS_SHOWN])
        left = len(s.reasons) - REASONS_SHOWN
        more = f'<li class="more">… and {left} more</li>' if left > 0 else ""
        items.append(f"<tr><th>{escape(s.comp)}</th><td><ul>{reasons}{more}</ul></td></tr>")
    left = len(found) - STUCK_SHOWN
    note = f'<p class="more">… and {left:,} more stuck competitions.</p>' if left > 0 else ""
    return f'<table class="stuck">{"".join(items)}</table>{note}'


def _swatches(kinds: Sequence[Kind]) -> str:
    return " ".join(f'<span class="sw {k.css}"></span>{charts.KIND_NAMES[k]}' for k in kinds)


def last_hour(records: Sequence[AuditRecord], arrivals: Mapping[str, float], *,
              now: datetime, cut: datetime | None = None) -> str:
    """Decisions per minute and hand-off latency over the hour before ``now``; ``cut``: the
    records read reach back only to then (the read's bound)."""
    start = now - pulse.HOUR
    minutes = pulse.per_minute(records, now=now)
    total = sum(sum(m.values()) for m in minutes)
    by_kind = {k: sum(m.get(k, 0) for m in minutes) for k in Kind}
    pressing = (f" ({by_kind[Kind.UNDONE]:,} undone, {by_kind[Kind.ESCALATED]:,} escalated)"
                if total else "")
    found = pulse.latencies(pulse.handoffs(records, now=now), arrivals)
    seconds = [p.seconds for p in found]
    said = (f"{len(found):,} hand-off{'s' if len(found) != 1 else ''}, median "
            f"{charts.seconds_text(statistics.median(seconds))}, max "
            f"{charts.seconds_text(max(seconds))}" if found else "no hand-off")
    note = (f'<p class="more">The records read reach back to {cut:%H:%M:%S} only: what is '
            "older is not counted.</p>" if cut is not None and cut > start else "")
    return (
        '<div class="charts"><figure><figcaption>Decisions per minute: '
        f"{total:,} in the last hour{pressing}</figcaption>"
        f"{charts.per_minute(minutes, start=start)}"
        f'<p class="legend">{_swatches(sorted(Kind))}</p></figure>'
        f"<figure><figcaption>Hand-off latency: {said}</figcaption>"
        f"{charts.latencies(found, start=start)}"
        '<p class="legend">From the arrival of the webhook that said a stage completed to '
        "the reactor starting the next stage.</p></figure></div>" + note)


def _row(row: recent.Row, link: Link) -> str:
    issue = a(f"#{row.issue}", link(int(row.issue))) if row.issue.isdigit() else ""
    what = row.what if len(row.what) <= DETAIL_CHARS else row.what[:DETAIL_CHARS] + "…"
    tag = f'<span class="tag {row.kind.css}">{escape(row.tag)}</span> ' if row.tag else ""
    count = ""
    if row.count > 1:
        deliveries = f", {len(row.guids):,} deliveries" if len(row.guids) > 1 else ""
        count = (f' <span class="count" title="{row.count:,} records{deliveries}">'
                 f"×{row.count:,}</span>")
    when = escape(row.at[11:19])
    if row.first[11:19] != row.at[11:19]:
        when += f'<br><span class="more">from {escape(row.first[11:19])}</span>'
    done = f'<br><span class="more">{escape(" · ".join(row.actions))}</span>' \
        if row.actions else ""
    return (f'<tr class="{row.kind.css}" title="{escape(row.outcome)}"><td>{when}</td>'
            f"<td>{issue}</td><td>{escape(row.comp)}</td><td>{escape(row.rule)}</td>"
            f"<td>{escape(row.actor)}</td><td class=\"detail\">{tag}{escape(what)}{count}"
            f"{done}</td></tr>")


def decisions(records: Sequence[AuditRecord], *, link: Link) -> str:
    """The newest decisions, repeats folded, undone changes and escalations marked (older
    ones kept on the page past routine ones)."""
    found = recent.rows(records)
    if not found:
        return '<p class="none">No decision recorded yet.</p>'
    kept, left = recent.chosen(found, newest=ROWS_SHOWN, pressing=PRESSING_KEPT)
    head = ("<tr><th>UTC</th><th>issue</th><th>competition</th><th>rule</th><th>actor</th>"
            "<th>what</th></tr>")
    note = (f'<p class="more">… and {left:,} older decisions not listed (older undone or '
            f"escalated ones are, {PRESSING_KEPT} at most).</p>" if left else "")
    return f'<table class="audit">{head}{"".join(_row(r, link) for r in kept)}</table>{note}'
