"""Render a :class:`ComplianceReport` as JSON, CSV or a self-contained HTML page.

The JSON form is canonical (it is what gets signed); CSV is for spreadsheets; HTML is for a
compliance officer to read and print. Labels (agent, model and action names) come from clients,
so every dynamic string is escaped for its target: ``html.escape`` for HTML and SVG, a leading
``'`` against formula injection for CSV. Rendering is pure and deterministic: the same report
always renders to the same bytes.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from decisiontrail.report_model import CheckpointSummary, ComplianceReport, Count

__all__ = ["render_csv", "render_html", "render_json"]

NO_VALUE = "—"
NO_DECISIONS = "No decisions in this period."
ALL_AGENTS = "all agents"
# The page's own policy (also sent as a header): inline CSS and SVG, nothing else.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
CHART_TOP = 15  # bars per chart; the rest are grouped as "other"

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# C0/C1 controls, lone surrogates and BMP noncharacters: shown, never passed through to HTML.
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


@dataclass(frozen=True)
class _Breakdown:
    key: str  # CSV section name and HTML id
    title: str
    counts: list[Count]
    ranked: bool  # sort by count (True) or keep the report's order (the histogram buckets)


def _breakdowns(report: ComplianceReport) -> list[_Breakdown]:
    return [
        _Breakdown("by_agent", "Decisions by agent", report.by_agent, True),
        _Breakdown("by_model", "Decisions by model", report.by_model, True),
        _Breakdown("by_action", "Decisions by action", report.by_action, True),
        _Breakdown("by_kind", "Decisions by kind", report.by_kind, True),
        _Breakdown("confidence", "Confidence histogram", report.confidence_histogram, False),
    ]


# ---------------------------------------------------------------------------------------------
# Shared formatting


def _rate(rate: float | None) -> str:
    return NO_VALUE if rate is None else f"{rate * 100:.1f}%"


def _share(part: int, whole: int) -> str:
    return _rate(None if whole == 0 else part / whole)


def _number(value: int) -> str:
    return f"{value:,}"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _ranked(counts: Iterable[Count]) -> list[Count]:
    return sorted(counts, key=lambda count: (-count.count, count.label))


def _top_with_other(counts: Sequence[Count], limit: int) -> list[Count]:
    """The first ``limit`` counts, plus one "other" row summing the rest."""
    if len(counts) <= limit:
        return list(counts)
    rest = counts[limit:]
    other = Count(f"other ({len(rest)} more)", sum(count.count for count in rest))
    return [*counts[:limit], other]


def _agent_filter(report: ComplianceReport) -> str:
    return ALL_AGENTS if report.agent is None else report.agent


# ---------------------------------------------------------------------------------------------
# JSON


def render_json(report: ComplianceReport) -> dict[str, Any]:
    """The canonical, signable form: exactly ``report.to_json()``, nothing time-dependent."""
    return report.to_json()


# ---------------------------------------------------------------------------------------------
# CSV

_Cell = str | int
_Row = list[_Cell]


def render_csv(report: ComplianceReport) -> str:
    """A CSV in sections: key/value summary rows, then one section per breakdown and table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in _csv_rows(report):
        writer.writerow([_csv_safe(cell) for cell in row])
    return buffer.getvalue()


def _csv_safe(cell: _Cell) -> _Cell:
    """Neutralise a text cell a spreadsheet would run as a formula (OWASP CSV injection)."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_PREFIXES):
        return "'" + cell
    return cell


def _csv_rows(report: ComplianceReport) -> Iterator[_Row]:
    yield from _csv_summary(report)
    for breakdown in _breakdowns(report):
        rows: list[_Row] = [[count.label, count.count] for count in breakdown.counts]
        yield from _csv_section(breakdown.key, ["label", "count"], rows)
    yield from _csv_section(
        "erasures",
        ["receipt_id", "erased_at", "values_erased"],
        [[e.receipt_id, e.erased_at, e.values_erased] for e in report.erasures],
    )
    yield from _csv_section(
        "key_rotations",
        ["key_id", "not_before", "not_after"],
        [[k.key_id, k.not_before, k.not_after or ""] for k in report.key_rotations],
    )
    yield from _csv_section("checkpoints", ["checkpoint", "size", "root"], _csv_checkpoints(report))
    yield from _csv_section(
        "consistency_proof",
        ["index", "hash"],
        [[index, value] for index, value in enumerate(report.consistency_proof)],
    )
    if report.extra:
        yield from _csv_section("extra", ["key", "value"], _csv_extra(report.extra))


def _csv_summary(report: ComplianceReport) -> Iterator[_Row]:
    yield ["report", "DecisionTrail compliance report"]
    yield ["tenant", report.tenant]
    yield ["agent", report.agent if report.agent is not None else f"({ALL_AGENTS})"]
    yield ["period_from", report.period_from]
    yield ["period_to", report.period_to]
    yield ["generated_at", report.generated_at]
    yield ["total_decisions", report.total_decisions]
    yield ["reviewed", report.reviewed]
    yield ["human_oversight_rate", _rate(report.oversight_rate)]
    yield ["overridden", report.overridden]
    yield ["override_rate", _rate(report.override_rate)]
    yield ["errors", report.errors]
    yield ["error_rate", _share(report.errors, report.total_decisions)]
    yield ["erasures", len(report.erasures)]
    yield ["oldest_record_at", report.oldest_record_at or ""]
    yield ["retention_days_required", report.retention_days_required]
    yield ["retention_met", _yes_no(report.retention_met)]
    yield ["verification_ok", _yes_no(report.verification_ok)]
    yield ["verification_detail", report.verification_detail]


def _csv_section(name: str, header: _Row, rows: Iterable[_Row]) -> Iterator[_Row]:
    yield []
    yield [name]
    yield header
    yield from rows


def _csv_checkpoints(report: ComplianceReport) -> list[_Row]:
    named = [("start", report.checkpoint_start), ("end", report.checkpoint_end)]
    return [[name, cp.size, cp.root] for name, cp in named if cp is not None]


def _csv_extra(value: Any, path: str = "") -> Iterator[_Row]:
    """Nested extra data as ``a.b.0`` paths, one scalar per row."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _csv_extra(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _csv_extra(item, f"{path}.{index}")
    else:
        yield [path, _scalar_text(value)]


def _scalar_text(value: Any) -> str:
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return _yes_no(value)
    return str(value)


# ---------------------------------------------------------------------------------------------
# HTML: escaping and small building blocks


def _visible(text: str) -> str:
    """Make control characters visible (␀…␟, ␡) and replace what HTML must not carry by �."""
    return _UNSAFE_CHARACTERS.sub(_control_picture, text)


def _control_picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


def _e(text: str) -> str:
    """Escape one dynamic string for HTML text or a quoted attribute (SVG included)."""
    return html.escape(_visible(text), quote=True)


def _e_lines(text: str) -> str:
    """Like :func:`_e`, but keeps line breaks (for ``<pre>``)."""
    return "\n".join(_e(line) for line in text.split("\n"))


def _bdi(text: str) -> str:
    """A client-supplied string inline in a sentence, isolated from its bidi context."""
    return f"<bdi>{_e(text)}</bdi>"


def _display_time(value: str) -> str:
    """An RFC 3339 time as ``<time>``, shown in UTC when it parses, verbatim otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return f"<bdi>{_e(value)}</bdi>"
    if moment.tzinfo is None:
        return f'<time datetime="{_e(value)}">{_e(value)}</time>'
    shown = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{_e(value)}">{_e(shown)}</time>'


def _hash(value: str) -> str:
    return f'<code class="hash">{_e(value)}</code>'


def _section(section_id: str, title: str, *parts: str) -> str:
    inner = "\n".join(parts)
    return (
        f'<section id="{section_id}" aria-labelledby="{section_id}-h">\n'
        f'<h2 id="{section_id}-h">{_e(title)}</h2>\n{inner}\n</section>'
    )


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are HTML fragments that are already escaped."""
    items = "".join(f"<dt>{_e(term)}</dt><dd>{value}</dd>" for term, value in pairs)
    return f'<dl class="facts">{items}</dl>'


def _status(ok: bool, good: str, bad: str) -> str:
    css, text = ("ok", f"✓ {good}") if ok else ("bad", f"✗ {bad}")
    return f'<strong class="status {css}">{_e(text)}</strong>'


@dataclass(frozen=True)
class _Table:
    caption: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]  # escaped HTML fragments; the first cell is the row header
    empty: str
    numeric_from: int = 1  # columns from this index on are right-aligned numbers
    footer: Sequence[str] = ()

    def html(self) -> str:
        return (
            f"<table>\n<caption>{_e(self.caption)}</caption>\n"
            f"<thead><tr>{self._header_cells()}</tr></thead>\n"
            f"<tbody>\n{self._body()}\n</tbody>{self._foot()}\n</table>"
        )

    def _header_cells(self) -> str:
        return "".join(
            f'<th scope="col"{self._numeric(i)}>{_e(h)}</th>' for i, h in enumerate(self.headers)
        )

    def _body(self) -> str:
        if not self.rows:
            span = len(self.headers)
            return f'<tr><td colspan="{span}" class="empty">{_e(self.empty)}</td></tr>'
        return "\n".join(self._row(row) for row in self.rows)

    def _foot(self) -> str:
        return f"\n<tfoot>{self._row(self.footer)}</tfoot>" if self.footer else ""

    def _row(self, cells: Sequence[str]) -> str:
        first, *rest = cells
        tail = "".join(f"<td{self._numeric(i)}>{cell}</td>" for i, cell in enumerate(rest, start=1))
        return f'<tr><th scope="row">{first}</th>{tail}</tr>'

    def _numeric(self, column: int) -> str:
        return ' class="num"' if column >= self.numeric_from else ""


# ---------------------------------------------------------------------------------------------
# HTML: charts (inline SVG)

_CHART_WIDTH = 760
_LABEL_WIDTH = 220
_BAR_X = 230
_BAR_MAX = 400
_ROW_HEIGHT = 26
_BAR_HEIGHT = 18
_LABEL_CHARS = 28


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scaled(value: int, largest: int, full: float) -> float:
    if largest <= 0 or value <= 0:
        return 0.0
    return max(1.0, round(value / largest * full, 1))


def _svg_open(chart_id: str, title: str, height: int, description: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_CHART_WIDTH} {height}" '
        f'width="100%" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">\n'
        f'<title id="{chart_id}-title">{_e(title)}</title>\n'
        f'<desc id="{chart_id}-desc">{_e(description)}</desc>'
    )


def _bar_chart(chart_id: str, title: str, counts: Sequence[Count], total: int) -> str:
    """Horizontal bars, one per label, longest first (the counts arrive ranked)."""
    rows = _top_with_other(counts, CHART_TOP)
    largest = max(count.count for count in rows)
    height = 8 + len(rows) * _ROW_HEIGHT
    bars = "\n".join(
        _bar_row(chart_id, index, count, largest, total) for index, count in enumerate(rows)
    )
    description = f"{len(counts)} labels; the top {CHART_TOP} are shown, the rest as other."
    return (
        f"{_svg_open(chart_id, title, height, description)}\n"
        f'<clipPath id="{chart_id}-clip"><rect x="0" y="0" width="{_LABEL_WIDTH}" '
        f'height="{height}"/></clipPath>\n{bars}\n</svg>'
    )


def _bar_row(chart_id: str, index: int, count: Count, largest: int, total: int) -> str:
    top = 4 + index * _ROW_HEIGHT
    middle = top + _BAR_HEIGHT / 2
    width = _scaled(count.count, largest, _BAR_MAX)
    value = f"{_number(count.count)} ({_share(count.count, total)})"
    css = "bar other" if index == CHART_TOP else "bar"
    return (
        f"<g><title>{_e(count.label)}: {_e(value)}</title>"
        f'<text x="0" y="{middle}" dominant-baseline="middle" clip-path="url(#{chart_id}-clip)">'
        f"{_e(_truncate(count.label, _LABEL_CHARS))}</text>"
        f'<rect class="{css}" x="{_BAR_X}" y="{top}" width="{width}" height="{_BAR_HEIGHT}"/>'
        f'<text class="value" x="{_BAR_X + width + 6}" y="{middle}" dominant-baseline="middle">'
        f"{_e(value)}</text></g>"
    )


_COLUMN_TOP = 24
_COLUMN_BASE = 210
_COLUMN_LEFT = 30
_COLUMN_AREA = 700


def _column_chart(chart_id: str, title: str, counts: Sequence[Count], total: int) -> str:
    """Vertical columns in the report's bucket order (the confidence histogram)."""
    largest = max(count.count for count in counts)
    slot = _COLUMN_AREA / len(counts)
    columns = "\n".join(
        _column(index, slot, count, largest, total) for index, count in enumerate(counts)
    )
    axis = (
        f'<line class="axis" x1="{_COLUMN_LEFT}" y1="{_COLUMN_BASE}" '
        f'x2="{_COLUMN_LEFT + _COLUMN_AREA}" y2="{_COLUMN_BASE}"/>'
    )
    description = "Decisions per confidence bucket, in bucket order."
    return f"{_svg_open(chart_id, title, 240, description)}\n{axis}\n{columns}\n</svg>"


def _column(index: int, slot: float, count: Count, largest: int, total: int) -> str:
    height = _scaled(count.count, largest, _COLUMN_BASE - _COLUMN_TOP)
    left = round(_COLUMN_LEFT + index * slot + slot * 0.15, 1)
    centre = round(_COLUMN_LEFT + index * slot + slot / 2, 1)
    value = f"{_number(count.count)} ({_share(count.count, total)})"
    return (
        f"<g><title>{_e(count.label)}: {_e(value)}</title>"
        f'<rect class="bar" x="{left}" y="{round(_COLUMN_BASE - height, 1)}" '
        f'width="{round(slot * 0.7, 1)}" height="{height}"/>'
        f'<text class="value" x="{centre}" y="{round(_COLUMN_BASE - height - 6, 1)}" '
        f'text-anchor="middle">{_e(_number(count.count))}</text>'
        f'<text x="{centre}" y="{_COLUMN_BASE + 18}" text-anchor="middle">'
        f"{_e(_truncate(count.label, 9))}</text></g>"
    )


def _chart_figure(breakdown: _Breakdown, total: int) -> str:
    chart_id = f"chart-{breakdown.key}"
    if not breakdown.counts:
        chart = f'<p class="note">{_e("No data for this breakdown.")}</p>'
    elif breakdown.ranked:
        chart = _bar_chart(chart_id, breakdown.title, _ranked(breakdown.counts), total)
    else:
        chart = _column_chart(chart_id, breakdown.title, breakdown.counts, total)
    caption = f"<figcaption>{_e(breakdown.title)}</figcaption>"
    return f'<figure class="chart">\n{caption}\n{chart}\n</figure>'


# ---------------------------------------------------------------------------------------------
# HTML: page sections


def render_html(report: ComplianceReport) -> str:
    """A complete HTML5 page: inline CSS, inline SVG, no script, no external resource."""
    body = "\n".join(
        [
            _header_html(report),
            _flags_html(report),
            _summary_html(report),
            _charts_html(report),
            _breakdown_tables_html(report),
            _retention_html(report),
            _erasures_html(report),
            _key_rotations_html(report),
            _integrity_html(report),
            _extra_html(report),
            _about_html(report),
        ]
    )
    title = f"Compliance report — {report.tenant} — {report.period_from} to {report.period_to}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" '
        f'content="{HTML_POLICY}">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _header_html(report: ComplianceReport) -> str:
    agent = f"<em>{_e(ALL_AGENTS)}</em>" if report.agent is None else _bdi(report.agent)
    return (
        f"<header>\n<h1>Compliance report: {_bdi(report.tenant)}</h1>\n"
        f'<p class="meta">Agent: {agent} · Period: {_display_time(report.period_from)} to '
        f"{_display_time(report.period_to)} · Generated: {_display_time(report.generated_at)}"
        "</p>\n</header>"
    )


def _flags_html(report: ComplianceReport) -> str:
    flags = []
    if not report.verification_ok:
        flags.append(f"✗ Integrity verification failed: {_bdi(report.verification_detail)}")
    if not report.retention_met:
        flags.append(
            f"✗ Retention requirement not met: records must be kept for "
            f"{_e(_number(report.retention_days_required))} days. See Retention below."
        )
    return "\n".join(f'<p class="flag bad">{flag}</p>' for flag in flags)


def _card(label: str, value: str, detail: str, css: str = "") -> str:
    classes = f"card {css}" if css else "card"
    return (
        f'<li class="{classes}"><span class="card-label">{_e(label)}</span>'
        f'<span class="card-value">{_e(value)}</span>'
        f'<span class="card-detail">{detail}</span></li>'
    )


def _summary_html(report: ComplianceReport) -> str:
    total = report.total_decisions
    verified = "✓ Verified" if report.verification_ok else "✗ Failed"
    cards = [
        _card("Total decisions", _number(total), _e("in the period")),
        _card(
            "Human oversight",
            _rate(report.oversight_rate),
            _e(f"{_number(report.reviewed)} of {_number(total)} decisions reviewed"),
        ),
        _card(
            "Override rate",
            _rate(report.override_rate),
            _e(f"{_number(report.overridden)} of {_number(report.reviewed)} reviews overrode"),
        ),
        _card("Errors", _number(report.errors), _e(f"{_share(report.errors, total)} of decisions")),
        _card(
            "Erasures",
            _number(len(report.erasures)),
            _e(f"{_number(sum(e.values_erased for e in report.erasures))} values erased"),
        ),
        _card(
            "Verification",
            verified,
            _bdi(report.verification_detail),
            "ok" if report.verification_ok else "bad",
        ),
    ]
    return _section("summary", "Summary", '<ul class="cards">', *cards, "</ul>")


def _charts_html(report: ComplianceReport) -> str:
    if report.total_decisions == 0:
        return _section("charts", "Charts", f'<p class="note">{_e(NO_DECISIONS)}</p>')
    figures = [_chart_figure(b, report.total_decisions) for b in _breakdowns(report)]
    return _section("charts", "Charts", '<div class="charts">', *figures, "</div>")


def _breakdown_table(breakdown: _Breakdown, total: int) -> str:
    counts = _ranked(breakdown.counts) if breakdown.ranked else breakdown.counts
    rows = [[_e(c.label), _e(_number(c.count)), _e(_share(c.count, total))] for c in counts]
    listed = sum(count.count for count in counts)
    footer = [_e("Total"), _e(_number(listed)), _e(_share(listed, total))] if counts else []
    return _Table(
        caption=breakdown.title,
        headers=["Label", "Decisions", "Share of all decisions"],
        rows=rows,
        empty=NO_DECISIONS if total == 0 else "No data for this breakdown.",
        footer=footer,
    ).html()


def _breakdown_tables_html(report: ComplianceReport) -> str:
    tables = [_breakdown_table(b, report.total_decisions) for b in _breakdowns(report)]
    return _section("breakdowns", "Breakdowns", *tables)


def _retention_html(report: ComplianceReport) -> str:
    oldest = (
        _display_time(report.oldest_record_at)
        if report.oldest_record_at is not None
        else _e("no records")
    )
    facts = _facts(
        [
            ("Oldest record kept", oldest),
            ("Required retention", _e(f"{_number(report.retention_days_required)} days")),
            ("Status", _status(report.retention_met, "Met", "NOT met")),
        ]
    )
    parts = [facts]
    if not report.retention_met:
        parts.append(
            '<p class="flag bad">✗ The retention requirement of '
            f"{_e(_number(report.retention_days_required))} days is not met.</p>"
        )
    return _section("retention", "Retention", *parts)


def _erasures_html(report: ComplianceReport) -> str:
    rows = [
        [_hash(e.receipt_id), _display_time(e.erased_at), _e(_number(e.values_erased))]
        for e in report.erasures
    ]
    table = _Table(
        caption="Erasures (GDPR art. 17) in the period",
        headers=["Receipt", "Erased at", "Values erased"],
        rows=rows,
        empty="No erasures in this period.",
        numeric_from=2,
    )
    return _section("erasures", "Erasures", table.html())


def _key_rotations_html(report: ComplianceReport) -> str:
    rows = [
        [
            _hash(k.key_id),
            _display_time(k.not_before),
            _e("no end (current)") if k.not_after is None else _display_time(k.not_after),
        ]
        for k in report.key_rotations
    ]
    table = _Table(
        caption="Signing keys and their validity windows",
        headers=["Key id", "Valid from", "Valid until"],
        rows=rows,
        empty="No key rotations in this period.",
        numeric_from=3,
    )
    return _section("keys", "Key rotations", table.html())


def _checkpoint_html(title: str, checkpoint: CheckpointSummary | None) -> str:
    heading = f'<article class="checkpoint"><h3>{_e(title)}</h3>'
    if checkpoint is None:
        return f'{heading}<p class="note">No checkpoint.</p></article>'
    facts = _facts(
        [("Tree size", _e(_number(checkpoint.size))), ("Root hash", _hash(checkpoint.root))]
    )
    return (
        f"{heading}{facts}"
        f'<h4>Signed note</h4><pre class="note-text">{_e_lines(checkpoint.note)}</pre></article>'
    )


def _proof_html(report: ComplianceReport) -> str:
    start, end = report.checkpoint_start, report.checkpoint_end
    if report.consistency_proof:
        hashes = "".join(f"<li>{_hash(value)}</li>" for value in report.consistency_proof)
        intro = "Hashes proving that the end tree extends the start tree (RFC 9162 §2.1.4):"
        return f'<p>{_e(intro)}</p>\n<ol class="hashes">{hashes}</ol>'
    if start is None or end is None:
        reason = "a start or end checkpoint is missing."
    elif start.size in (0, end.size):
        reason = "none is needed: the start tree is empty or equal to the end tree."
    else:
        reason = "none was supplied."
    return f'<p class="note">{_e("No consistency proof hashes: " + reason)}</p>'


def _integrity_html(report: ComplianceReport) -> str:
    status = _status(report.verification_ok, "Verification passed", "Verification FAILED")
    checkpoints = (
        '<div class="checkpoints">'
        f"{_checkpoint_html('Start checkpoint', report.checkpoint_start)}"
        f"{_checkpoint_html('End checkpoint', report.checkpoint_end)}</div>"
    )
    return _section(
        "integrity",
        "Integrity",
        f"<p>{status} {_bdi(report.verification_detail)}</p>",
        checkpoints,
        "<h3>Consistency proof</h3>",
        _proof_html(report),
    )


def _value_html(value: Any) -> str:
    """Structured extra data as nested lists, never as raw JSON."""
    if isinstance(value, dict):
        items = "".join(f"<dt>{_e(str(k))}</dt><dd>{_value_html(v)}</dd>" for k, v in value.items())
        return f'<dl class="facts">{items}</dl>'
    if isinstance(value, list | tuple):
        return "<ul>" + "".join(f"<li>{_value_html(item)}</li>" for item in value) + "</ul>"
    return _e(_scalar_text(value))


def _extra_html(report: ComplianceReport) -> str:
    if not report.extra:
        return ""
    return _section("extra", "Additional information", _value_html(report.extra))


def _about_html(report: ComplianceReport) -> str:
    return (
        '<footer id="about">\n<h2>About this report</h2>\n'
        "<p>This page is a readable rendering of a DecisionTrail compliance report. It is not "
        "the signed form: the JSON form of the same report is canonical. It is serialised as "
        "RFC 8785 canonical JSON and signed with the service's Ed25519 report key; the "
        "published key list with validity windows (<code>keyring.json</code>) is the trust "
        "root.</p>\n"
        "<p>To verify it, obtain the JSON form with its signature and run "
        "<code>decisiontrail verify</code> on it with the trust root. The verifier checks the "
        "signature, the signed checkpoint notes, and that the end checkpoint is consistent "
        "with the start checkpoint using the proof hashes listed under Integrity. Figures on "
        "this page that disagree with the verified JSON form are not authoritative.</p>\n"
        f"<p>Report generated {_display_time(report.generated_at)} for tenant "
        f"{_bdi(report.tenant)}.</p>\n</footer>"
    )


_CSS = """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --line: #c8ccd2;
  --accent: #1f4e79; --bar: #2b6cb0; --other: #6b7280; --ok: #17603a; --ok-bg: #e7f4ec;
  --bad: #9b1c1c; --bad-bg: #fdecec; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; color: var(--accent); }
h2 { font-size: 1.3rem; margin: 32px 0 12px; padding-bottom: 4px;
  border-bottom: 2px solid var(--accent); color: var(--accent); }
h3 { font-size: 1.1rem; margin: 16px 0 8px; }
h4 { font-size: 0.95rem; margin: 12px 0 4px; }
.meta { color: var(--muted); margin: 0; }
.note { color: var(--muted); font-style: italic; }
.flag { padding: 10px 14px; border: 2px solid; border-radius: 6px; font-weight: 600; }
.flag.bad, .card.bad { border-color: var(--bad); background: var(--bad-bg); color: var(--bad); }
.card.ok { border-color: var(--ok); background: var(--ok-bg); }
.status.ok { color: var(--ok); }
.status.bad { color: var(--bad); }
.cards { list-style: none; padding: 0; margin: 0; display: grid; gap: 12px;
  grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  display: flex; flex-direction: column; gap: 2px; }
.card-label { font-size: 0.85rem; color: var(--muted); text-transform: uppercase;
  letter-spacing: 0.03em; }
.card.bad .card-label { color: var(--bad); }
.card-value { font-size: 1.6rem; font-weight: 700; }
.card-detail { font-size: 0.85rem; overflow-wrap: anywhere; }
.charts { display: grid; gap: 16px; grid-template-columns: 1fr; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
figcaption { font-weight: 600; margin-bottom: 8px; }
svg text { font: 12px system-ui, sans-serif; fill: var(--ink); }
svg text.value { fill: var(--muted); }
svg .bar { fill: var(--bar); }
svg .bar.other { fill: var(--other); }
svg .axis { stroke: var(--muted); stroke-width: 1; }
table { border-collapse: collapse; width: 100%; margin: 0 0 20px; }
caption { text-align: left; font-weight: 600; padding: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
thead th { background: #eef2f7; }
tbody th { font-weight: normal; }
tfoot th, tfoot td { font-weight: 700; border-top: 2px solid var(--ink); }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.empty { color: var(--muted); font-style: italic; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 0.85rem; }
code.hash { word-break: break-all; overflow-wrap: anywhere; }
pre.note-text { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f6f8;
  border: 1px solid var(--line); border-radius: 6px; padding: 10px; margin: 0; }
.checkpoints { display: grid; gap: 16px; grid-template-columns: repeat(auto-fit,
  minmax(320px, 1fr)); }
.checkpoint { border: 1px solid var(--line); border-radius: 8px; padding: 4px 14px 14px; }
ol.hashes li { margin: 2px 0; }
footer { margin-top: 40px; color: var(--muted); }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  figure.chart, .card, .checkpoint, tr, .flag { break-inside: avoid; }
  thead { display: table-header-group; }
  .cards { grid-template-columns: repeat(3, 1fr); }
}
"""
