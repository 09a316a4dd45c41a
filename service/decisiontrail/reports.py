"""Render a :class:`ComplianceReport` as JSON, CSV or a self-contained HTML page.

The JSON form is canonical (it is what gets signed); CSV is for spreadsheets; HTML is for a
compliance officer to read and print. The HTML page is the Jinja2 template
``console/templates/report.html`` (the console's environment, autoescape on), with its CSS
inlined. Labels (agent, model and action names) come from clients, so every dynamic string is
escaped for its target: its control characters made visible, then ``html.escape`` for HTML and
SVG (the template's ``text`` filter); a leading ``'`` against formula injection for CSV.
Rendering is pure and deterministic: the same report always renders to the same bytes.
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

from markupsafe import Markup

from decisiontrail.console.rendering import TEMPLATES, environment
from decisiontrail.report_model import ComplianceReport, Count

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
# HTML: the page is the template report.html (shared with the console's Jinja2 environment,
# autoescape on); this part escapes client strings and lays out the charts.


def _visible(text: str) -> str:
    """Make control characters visible (␀…␟, ␡) and replace what HTML must not carry by �."""
    return _UNSAFE_CHARACTERS.sub(_control_picture, text)


def _control_picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


def _e(text: str) -> Markup:
    """One dynamic string for HTML text or a quoted attribute (SVG included)."""
    return Markup(html.escape(_visible(text), quote=True))


def _e_lines(text: str) -> Markup:
    """Like :func:`_e`, but keeps line breaks (for ``<pre>``)."""
    return Markup("\n".join(_e(line) for line in text.split("\n")))


def _display_time(value: str) -> Markup:
    """An RFC 3339 time as ``<time>``, shown in UTC when it parses, verbatim otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return Markup(f"<bdi>{_e(value)}</bdi>")
    if moment.tzinfo is None:
        return Markup(f'<time datetime="{_e(value)}">{_e(value)}</time>')
    shown = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup(f'<time datetime="{_e(value)}">{_e(shown)}</time>')


def _hash(value: str) -> Markup:
    return Markup(f'<code class="hash">{_e(value)}</code>')


@dataclass(frozen=True)
class _Table:
    caption: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Markup]]  # escaped fragments; the first cell is the row header
    empty: str
    numeric_from: int = 1  # columns from this index on are right-aligned numbers
    footer: Sequence[Markup] = ()


@dataclass(frozen=True)
class _Card:
    label: str
    value: str
    detail: str
    css: str = ""
    bdi: bool = False


_CHART_WIDTH = 760
_LABEL_WIDTH = 220
_BAR_X = 230
_BAR_MAX = 400
_ROW_HEIGHT = 26
_BAR_HEIGHT = 18
_LABEL_CHARS = 28
_COLUMN_TOP = 24
_COLUMN_BASE = 210
_COLUMN_LEFT = 30
_COLUMN_AREA = 700


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scaled(value: int, largest: int, full: float) -> float:
    if largest <= 0 or value <= 0:
        return 0.0
    return max(1.0, round(value / largest * full, 1))


def _chart(breakdown: _Breakdown, total: int) -> dict[str, Any]:
    chart: dict[str, Any] = {"id": f"chart-{breakdown.key}", "title": breakdown.title}
    if not breakdown.counts:
        return chart | {"kind": "none"}
    if breakdown.ranked:
        return chart | _bars(_ranked(breakdown.counts), total)
    return chart | _columns(breakdown.counts, total)


def _bars(counts: Sequence[Count], total: int) -> dict[str, Any]:
    """Horizontal bars, one per label, longest first (the counts arrive ranked)."""
    rows = _top_with_other(counts, CHART_TOP)
    largest = max(count.count for count in rows)
    items = []
    for index, count in enumerate(rows):
        top = 4 + index * _ROW_HEIGHT
        width = _scaled(count.count, largest, _BAR_MAX)
        items.append(
            {
                "label": count.label,
                "short": _truncate(count.label, _LABEL_CHARS),
                "top": top,
                "middle": top + _BAR_HEIGHT / 2,
                "width": width,
                "value": f"{_number(count.count)} ({_share(count.count, total)})",
                "value_x": _BAR_X + width + 6,
                "css": "bar other" if index == CHART_TOP else "bar",
            }
        )
    return {
        "kind": "bars",
        "height": 8 + len(rows) * _ROW_HEIGHT,
        "description": f"{len(counts)} labels; the top {CHART_TOP} are shown, the rest as other.",
        "label_width": _LABEL_WIDTH,
        "bar_x": _BAR_X,
        "bar_height": _BAR_HEIGHT,
        "entries": items,
    }


def _columns(counts: Sequence[Count], total: int) -> dict[str, Any]:
    """Vertical columns in the report's bucket order (the confidence histogram)."""
    largest = max(count.count for count in counts)
    slot = _COLUMN_AREA / len(counts)
    items = []
    for index, count in enumerate(counts):
        height = _scaled(count.count, largest, _COLUMN_BASE - _COLUMN_TOP)
        centre = round(_COLUMN_LEFT + index * slot + slot / 2, 1)
        items.append(
            {
                "label": count.label,
                "short": _truncate(count.label, 9),
                "left": round(_COLUMN_LEFT + index * slot + slot * 0.15, 1),
                "top": round(_COLUMN_BASE - height, 1),
                "width": round(slot * 0.7, 1),
                "height": height,
                "centre": centre,
                "value": f"{_number(count.count)} ({_share(count.count, total)})",
                "number": _number(count.count),
                "value_y": round(_COLUMN_BASE - height - 6, 1),
                "label_y": _COLUMN_BASE + 18,
            }
        )
    return {
        "kind": "columns",
        "description": "Decisions per confidence bucket, in bucket order.",
        "left": _COLUMN_LEFT,
        "right": _COLUMN_LEFT + _COLUMN_AREA,
        "base": _COLUMN_BASE,
        "entries": items,
    }


def _breakdown_table(breakdown: _Breakdown, total: int) -> _Table:
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
    )


def _cards(report: ComplianceReport) -> list[_Card]:
    total = report.total_decisions
    erased = sum(e.values_erased for e in report.erasures)
    return [
        _Card("Total decisions", _number(total), "in the period"),
        _Card(
            "Human oversight",
            _rate(report.oversight_rate),
            f"{_number(report.reviewed)} of {_number(total)} decisions reviewed",
        ),
        _Card(
            "Override rate",
            _rate(report.override_rate),
            f"{_number(report.overridden)} of {_number(report.reviewed)} reviews overrode",
        ),
        _Card("Errors", _number(report.errors), f"{_share(report.errors, total)} of decisions"),
        _Card("Erasures", _number(len(report.erasures)), f"{_number(erased)} values erased"),
        _Card(
            "Verification",
            "✓ Verified" if report.verification_ok else "✗ Failed",
            report.verification_detail,
            "ok" if report.verification_ok else "bad",
            bdi=True,
        ),
    ]


def _no_proof_reason(report: ComplianceReport) -> str:
    start, end = report.checkpoint_start, report.checkpoint_end
    if start is None or end is None:
        return "a start or end checkpoint is missing."
    if start.size in (0, end.size):
        return "none is needed: the start tree is empty or equal to the end tree."
    return "none was supplied."


def render_html(report: ComplianceReport) -> str:
    """A complete HTML5 page: inline CSS, inline SVG, no script, no external resource."""
    breakdowns = _breakdowns(report)
    erasures = _Table(
        caption="Erasures (GDPR art. 17) in the period",
        headers=["Receipt", "Erased at", "Values erased"],
        rows=[
            [_hash(e.receipt_id), _display_time(e.erased_at), _e(_number(e.values_erased))]
            for e in report.erasures
        ],
        empty="No erasures in this period.",
        numeric_from=2,
    )
    keys = _Table(
        caption="Signing keys and their validity windows",
        headers=["Key id", "Valid from", "Valid until"],
        rows=[
            [
                _hash(k.key_id),
                _display_time(k.not_before),
                _e("no end (current)") if k.not_after is None else _display_time(k.not_after),
            ]
            for k in report.key_rotations
        ],
        empty="No key rotations in this period.",
        numeric_from=3,
    )
    title = f"Compliance report — {report.tenant} — {report.period_from} to {report.period_to}"
    return _TEMPLATE.render(
        r=report,
        page_title=title,
        policy=Markup(HTML_POLICY),
        css=Markup(_CSS),
        all_agents=ALL_AGENTS,
        no_decisions=NO_DECISIONS,
        cards=_cards(report),
        charts=[_chart(b, report.total_decisions) for b in breakdowns],
        breakdown_tables=[_breakdown_table(b, report.total_decisions) for b in breakdowns],
        erasures=erasures,
        keys=keys,
        no_proof_reason=_no_proof_reason(report),
        chart_width=_CHART_WIDTH,
        time=_display_time,
        hash=_hash,
    )


_REPORT_FILTERS = {
    "text": lambda value: _e(str(value)),
    "text_lines": lambda value: _e_lines(str(value)),
    "number": _number,
    "scalar": _scalar_text,
}
_ENVIRONMENT = environment.overlay()
_ENVIRONMENT.filters.update(_REPORT_FILTERS)
_TEMPLATE = _ENVIRONMENT.get_template("report.html")
_CSS = (TEMPLATES / "report.css").read_text(encoding="utf-8")
