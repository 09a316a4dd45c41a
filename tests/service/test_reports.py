from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from decisiontrail.report_model import (
    CheckpointSummary,
    ComplianceReport,
    Count,
    ErasureSummary,
    KeyRotation,
)
from decisiontrail.reports import render_csv, render_html, render_json

SCRIPT_LABEL = "<script>alert(1)</script>"
ROOT_START = "ab" * 32
ROOT_END = "cd" * 32
NOTE_END = "decisiontrail.example/acme\n1200\nzc3NzQ==\n\n— decisiontrail.example Zm9vYmFy\n"
BUCKETS = [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)] + ["none"]
BREAKDOWN_TITLES = {
    "by_agent": "Decisions by agent",
    "by_model": "Decisions by model",
    "by_action": "Decisions by action",
    "by_kind": "Decisions by kind",
    "confidence": "Confidence histogram",
}


def sample_report(**changes: Any) -> ComplianceReport:
    """200 decisions of two agents, one erasure, two keys, two checkpoints: all verified."""
    report = ComplianceReport(
        tenant="acme",
        agent=None,
        period_from="2026-01-01T00:00:00Z",
        period_to="2026-02-01T00:00:00Z",
        generated_at="2026-02-01T00:05:00Z",
        total_decisions=200,
        by_agent=[Count("support-bot", 120), Count(SCRIPT_LABEL, 80)],
        by_model=[Count("gpt-4o", 150), Count("claude-3-5-sonnet", 50)],
        by_action=[Count("answer", 170), Count("refund", 30)],
        by_kind=[Count("llm_call", 140), Count("tool_call", 60)],
        reviewed=40,
        overridden=10,
        errors=3,
        confidence_histogram=[
            Count(label, n)
            for label, n in zip(BUCKETS, [0, 0, 1, 2, 3, 5, 10, 30, 80, 60, 9], strict=True)
        ],
        erasures=[ErasureSummary("rcpt-0001", "2026-01-15T10:00:00Z", 3)],
        oldest_record_at="2025-06-01T00:00:00Z",
        retention_days_required=183,
        retention_met=True,
        key_rotations=[
            KeyRotation("a1b2c3d4e5f60718", "2025-01-01T00:00:00Z", "2026-01-10T00:00:00Z"),
            KeyRotation("0f1e2d3c4b5a6978", "2026-01-10T00:00:00Z", None),
        ],
        checkpoint_start=CheckpointSummary(1000, ROOT_START, "start note\n1000\n"),
        checkpoint_end=CheckpointSummary(1200, ROOT_END, NOTE_END),
        consistency_proof=["11" * 32, "22" * 32],
        verification_ok=True,
        verification_detail="1,200 records and 2 checkpoints verified",
    )
    return replace(report, **changes)


def empty_report() -> ComplianceReport:
    return sample_report(
        total_decisions=0,
        by_agent=[],
        by_model=[],
        by_action=[],
        by_kind=[],
        reviewed=0,
        overridden=0,
        errors=0,
        confidence_histogram=[],
        erasures=[],
        oldest_record_at=None,
        key_rotations=[],
        checkpoint_start=None,
        checkpoint_end=None,
        consistency_proof=[],
    )


# --- a tiny HTML checker -------------------------------------------------------------------

VOID_ELEMENTS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip


class TagTree(HTMLParser):
    """Records every tag and text run; fails on any end tag that does not close the open one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)  # <rect .../> in SVG: opens and closes itself

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def _record(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(name for name, _ in attrs)))
        self.attrs.extend(attrs)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def parse_balanced(page: str) -> TagTree:
    tree = TagTree()
    tree.feed(page)
    tree.close()
    assert tree.open == [], f"unclosed tags: {tree.open}"
    return tree


def captions(page: str) -> list[str]:
    return re.findall(r"<caption>(.*?)</caption>", page)


# --- CSV helpers ---------------------------------------------------------------------------


def csv_sections(text: str) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    """The key/value header block, and each named section's rows without its column header."""
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text, newline="")):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    summary = {key: value for key, value in blocks[0]}
    sections = {block[0][0]: block[2:] for block in blocks[1:]}
    return summary, sections


# --- JSON ----------------------------------------------------------------------------------


def test_json_round_trips_and_equals_to_json() -> None:
    report = sample_report(extra={"policy": {"name": "p1", "thresholds": [0.5, 0.9]}})
    rendered = render_json(report)
    assert json.loads(json.dumps(rendered)) == report.to_json()
    assert rendered == report.to_json()


def test_json_is_deterministic() -> None:
    report = sample_report()
    assert json.dumps(render_json(report), sort_keys=True) == json.dumps(
        render_json(report), sort_keys=True
    )


def test_json_of_empty_report_has_null_rates() -> None:
    rendered = render_json(empty_report())
    assert rendered["oversight_rate"] is None
    assert rendered["override_rate"] is None


# --- CSV -----------------------------------------------------------------------------------


def test_csv_has_summary_with_totals_and_rates() -> None:
    summary, _ = csv_sections(render_csv(sample_report()))
    assert summary["tenant"] == "acme"
    assert summary["agent"] == "(all agents)"
    assert summary["period_from"] == "2026-01-01T00:00:00Z"
    assert summary["total_decisions"] == "200"
    assert summary["reviewed"] == "40"
    assert summary["human_oversight_rate"] == "20.0%"
    assert summary["override_rate"] == "25.0%"
    assert summary["errors"] == "3"
    assert summary["error_rate"] == "1.5%"
    assert summary["retention_days_required"] == "183"
    assert summary["retention_met"] == "yes"
    assert summary["verification_ok"] == "yes"
    assert summary["verification_detail"] == "1,200 records and 2 checkpoints verified"


def test_csv_has_every_breakdown_and_table() -> None:
    report = sample_report()
    _, sections = csv_sections(render_csv(report))
    expected = {
        "by_agent": report.by_agent,
        "by_model": report.by_model,
        "by_action": report.by_action,
        "by_kind": report.by_kind,
        "confidence": report.confidence_histogram,
    }
    for name, counts in expected.items():
        assert sections[name] == [[c.label, str(c.count)] for c in counts], name
    assert sections["erasures"] == [["rcpt-0001", "2026-01-15T10:00:00Z", "3"]]
    assert sections["key_rotations"][1] == ["0f1e2d3c4b5a6978", "2026-01-10T00:00:00Z", ""]
    assert sections["checkpoints"] == [["start", "1000", ROOT_START], ["end", "1200", ROOT_END]]
    assert sections["consistency_proof"] == [["0", "11" * 32], ["1", "22" * 32]]


def test_csv_rounds_rates_to_one_decimal() -> None:
    report = sample_report(total_decisions=3, reviewed=3, overridden=2)
    summary, _ = csv_sections(render_csv(report))
    assert summary["human_oversight_rate"] == "100.0%"
    assert summary["override_rate"] == "66.7%"


def test_csv_neutralises_formula_injection() -> None:
    hostile = ['=HYPERLINK("http://x")', "+1+2", "-3", "@SUM(A1)", "\tcmd", "\rcmd"]
    report = sample_report(tenant="=cmd|' /C calc'!A0", by_model=[Count(h, 1) for h in hostile])
    summary, sections = csv_sections(render_csv(report))
    assert summary["tenant"] == "'=cmd|' /C calc'!A0"
    assert [row[0] for row in sections["by_model"]] == ["'" + h for h in hostile]


def test_csv_leaves_harmless_cells_alone() -> None:
    report = sample_report(by_model=[Count("a=b", 1), Count("model-1", 2)])
    _, sections = csv_sections(render_csv(report))
    assert [row[0] for row in sections["by_model"]] == ["a=b", "model-1"]


def test_csv_flattens_extra_without_json() -> None:
    report = sample_report(extra={"policy": {"name": "p1", "thresholds": [0.5, 0.9]}})
    _, sections = csv_sections(render_csv(report))
    assert ["policy.thresholds.1", "0.9"] in sections["extra"]
    assert ["policy.name", "p1"] in sections["extra"]


def test_csv_of_empty_report() -> None:
    summary, sections = csv_sections(render_csv(empty_report()))
    assert summary["total_decisions"] == "0"
    assert summary["human_oversight_rate"] == "—"
    assert summary["override_rate"] == "—"
    assert summary["oldest_record_at"] == ""
    assert sections["by_agent"] == []
    assert sections["checkpoints"] == []


# --- HTML ----------------------------------------------------------------------------------


def test_html_is_a_balanced_self_contained_page() -> None:
    page = render_html(sample_report())
    assert page.startswith("<!DOCTYPE html>")
    tree = parse_balanced(page)
    names = {name for name, _ in tree.attrs}
    assert not names & {"src", "href", "srcset", "action"}
    assert not any(name.startswith("on") for name in names)
    assert not [tag for tag, _ in tree.tags if tag in {"script", "link", "img", "iframe"}]
    assert page == render_html(sample_report())  # deterministic


def test_html_has_a_table_per_breakdown_and_an_svg_per_chart() -> None:
    page = render_html(sample_report())
    assert set(BREAKDOWN_TITLES.values()) <= set(captions(page))
    assert page.count("<svg") == len(BREAKDOWN_TITLES)
    assert page.count('role="img"') == len(BREAKDOWN_TITLES)
    assert page.count("<table") == len(BREAKDOWN_TITLES) + 2  # plus erasures and keys
    assert page.count('<th scope="col"') >= 3 * page.count("<table")


def test_html_shows_title_period_and_summary() -> None:
    tree = parse_balanced(render_html(sample_report(agent="support-bot")))
    text = tree.text
    assert "Compliance report: acme" in text
    assert "Agent: support-bot" in text
    assert "2026-01-01 00:00:00 UTC to 2026-02-01 00:00:00 UTC" in text
    assert "20.0%" in text  # human oversight 40 / 200
    assert "25.0%" in text  # override 10 / 40
    assert "✓ Verified" in text


def test_html_percentages_in_breakdown_tables() -> None:
    report = sample_report(total_decisions=3, by_kind=[Count("tool_call", 1), Count("llm_call", 2)])
    page = render_html(report)
    table = page[page.index("<caption>Decisions by kind</caption>") :]
    table = table[: table.index("</table>")]
    assert re.search(r"llm_call</th><td class=\"num\">2</td><td class=\"num\">66\.7%", table)
    assert re.search(r"tool_call</th><td class=\"num\">1</td><td class=\"num\">33\.3%", table)
    assert table.index("llm_call") < table.index("tool_call")  # ranked by count


def test_html_escapes_injected_labels() -> None:
    page = render_html(sample_report())
    assert SCRIPT_LABEL not in page
    assert "<script" not in page.lower()
    assert html.escape(SCRIPT_LABEL, quote=True) in page
    assert SCRIPT_LABEL in parse_balanced(page).text


def test_html_escapes_attribute_breakouts() -> None:
    label = '" onmouseover="alert(1)'
    tree = parse_balanced(render_html(sample_report(by_model=[Count(label, 5)])))
    assert not any(name.startswith("on") for name, _ in tree.attrs)
    assert label in tree.text


def test_html_shows_checkpoints_and_proof() -> None:
    page = render_html(sample_report())
    assert f'<code class="hash">{ROOT_START}</code>' in page
    assert f'<code class="hash">{ROOT_END}</code>' in page
    assert "<pre" in page and "— decisiontrail.example Zm9vYmFy" in page
    assert "decisiontrail.example/acme\n1200\n" in page  # the note keeps its lines
    assert "11" * 32 in page and "22" * 32 in page


def test_html_groups_labels_beyond_the_top_fifteen() -> None:
    agents = [Count(f"agent-{i:02}", 100 - i) for i in range(20)]
    page = render_html(sample_report(by_agent=agents, total_decisions=sum(a.count for a in agents)))
    chart = page[page.index('id="chart-by_agent-title"') :]
    chart = chart[: chart.index("</svg>")]
    assert chart.count('<rect class="bar') == 16
    assert "other (5 more)" in chart
    assert "agent-14" in chart and "agent-15" not in chart
    table = page[page.index("<caption>Decisions by agent</caption>") :]
    assert "agent-19" in table[: table.index("</table>")]  # tables list every label


def test_html_empty_report() -> None:
    page = render_html(empty_report())
    tree = parse_balanced(page)
    assert "No decisions in this period." in tree.text
    assert "<svg" not in page
    assert "No checkpoint." in tree.text
    assert "No erasures in this period." in tree.text
    assert set(BREAKDOWN_TITLES.values()) <= set(captions(page))
    assert "—" in tree.text  # undefined rates


def test_html_flags_retention_not_met() -> None:
    met = parse_balanced(render_html(sample_report())).text
    page = render_html(sample_report(retention_met=False))
    text = parse_balanced(page).text
    assert "Retention requirement not met" in text
    assert "✗ NOT met" in text
    assert '<p class="flag bad">' in page
    assert "not met" not in met.lower()


def test_html_flags_failed_verification() -> None:
    report = sample_report(verification_ok=False, verification_detail="record 17: modified")
    text = parse_balanced(render_html(report)).text
    assert "Integrity verification failed: record 17: modified" in text
    assert "✗ Failed" in text


def test_html_renders_extra_without_json() -> None:
    report = sample_report(extra={"policy": {"name": "p1", "thresholds": [0.5, 0.9]}})
    page = render_html(report)
    assert "thresholds" in page and "0.9" in page
    assert '{"' not in page and "{'" not in page


def test_html_shows_control_characters_visibly() -> None:
    page = render_html(sample_report(by_action=[Count("a\x00b\x1bc", 1)]))
    assert "\x00" not in page and "\x1b" not in page
    assert "a␀b␛c" in page


# --- any label at all ----------------------------------------------------------------------

hostile_text = st.lists(
    st.sampled_from(["<", ">", "&", '"', "'", "<script>", "</svg>", "&amp;", "\x00", "\r\n", "="])
    | st.text(st.characters(exclude_categories=()), max_size=8),
    max_size=6,
).map("".join)
counts = st.lists(st.builds(Count, hostile_text, st.integers(0, 10**9)), max_size=20)


@st.composite
def random_reports(draw: st.DrawFn) -> ComplianceReport:
    return sample_report(
        tenant=draw(hostile_text),
        agent=draw(st.none() | hostile_text),
        total_decisions=draw(st.integers(0, 10**9)),
        by_agent=draw(counts),
        by_model=draw(counts),
        by_action=draw(counts),
        by_kind=draw(counts),
        confidence_histogram=draw(counts),
        reviewed=draw(st.integers(0, 10**9)),
        overridden=draw(st.integers(0, 10**9)),
        verification_detail=draw(hostile_text),
        erasures=[ErasureSummary(draw(hostile_text), "2026-01-15T10:00:00Z", 1)],
    )


def all_labels(report: ComplianceReport) -> list[str]:
    breakdowns = [
        report.by_agent,
        report.by_model,
        report.by_action,
        report.by_kind,
        report.confidence_histogram,
    ]
    return [count.label for counts in breakdowns for count in counts]


def with_plain_labels(report: ComplianceReport) -> ComplianceReport:
    def plain(counts: list[Count]) -> list[Count]:
        return [Count(f"label-{i}", c.count) for i, c in enumerate(counts)]

    return replace(
        report,
        tenant="t",
        agent=None if report.agent is None else "a",
        by_agent=plain(report.by_agent),
        by_model=plain(report.by_model),
        by_action=plain(report.by_action),
        by_kind=plain(report.by_kind),
        confidence_histogram=plain(report.confidence_histogram),
        verification_detail="d",
        erasures=[replace(e, receipt_id="r") for e in report.erasures],
    )


@settings(max_examples=150, deadline=None)
@given(random_reports())
def test_no_label_breaks_any_renderer(report: ComplianceReport) -> None:
    render_json(report)
    _, sections = csv_sections(render_csv(report))
    assert [row[0] for row in sections["by_agent"]] == [
        "'" + c.label if c.label.startswith(("=", "+", "-", "@", "\t", "\r")) else c.label
        for c in report.by_agent
    ]
    page = render_html(report)
    tree = parse_balanced(page)
    # Labels change no markup: the tag structure is that of the same report with plain labels.
    assert tree.tags == parse_balanced(render_html(with_plain_labels(report))).tags
    # Every "<" on the page opens or closes one of the renderer's own tags.
    own_tags = "|".join(sorted({name for name, _ in tree.tags}))
    assert not re.search(rf"<(?!!DOCTYPE html>|/?(?:{own_tags})[\s/>])", page, re.IGNORECASE)
    # ...and every printable label reads back as text (the tables list every label in full).
    assert all(label in tree.text for label in all_labels(report) if label.isprintable())
