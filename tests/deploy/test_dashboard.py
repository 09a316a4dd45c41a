"""deploy/grafana: every query of the dashboard uses only metrics the service really exports
(read from a running service's /metrics) and is valid PromQL that a real Prometheus scraping
that service answers."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ScrapedService, query_until

GRAFANA = DEPLOY / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "decisiontrail.json").read_text())
# Grafana's own variables, as Grafana would fill them in for a short time range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}
METRIC = re.compile(r"\b(decisiontrail_\w+|up)\b(?=\s*[{\[)]|\s*$)")
# Nothing fails in the scraped service, so its store-error series does not exist yet.
EMPTY_WHEN_NOTHING_FAILS = {"Store errors"}


def queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in DASHBOARD["panels"]
        for target in panel.get("targets", [])
    ]


def exported_names(metrics_text: str) -> set[str]:
    """The series names in the exposition: its samples', and those its ``# TYPE`` lines
    declare (a labelled counter nothing has counted yet has no sample)."""
    names = set(re.findall(r"^([a-zA-Z_:][\w:]*)[{ ]", metrics_text, re.MULTILINE))
    for name, kind in re.findall(r"^# TYPE (\S+) (\w+)$", metrics_text, re.MULTILINE):
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif kind == "counter":
            names.add(name if name.endswith("_total") else f"{name}_total")
        else:
            names.add(name)
    return names


def in_prometheus(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_the_dashboard_covers_what_the_issue_names() -> None:
    text = " ".join(expr for _, expr in queries())
    for metric in ("decisiontrail_decisions_ingested_total", "decisiontrail_ingest_seconds_bucket",
                   "decisiontrail_http_requests_total", "decisiontrail_store_seconds_bucket",
                   "decisiontrail_checkpoint_age_seconds", "decisiontrail_verifications_total",
                   "decisiontrail_erasures_total"):  # fmt: skip
        assert metric in text
    assert "sum by (agent, kind)" in text


def test_every_query_uses_only_exported_metrics(scraped_service: ScrapedService) -> None:
    exported = exported_names(scraped_service.metrics()) | {"up"}  # up: Prometheus' own
    assert "decisiontrail_decisions_ingested_total" in exported
    for title, expr in queries():
        used = set(METRIC.findall(expr))
        assert used, f"{title}: no metric found in {expr!r}"
        assert used <= exported, f"{title}: {used - exported} is not exported"


@pytest.mark.slow
def test_every_query_is_answered_by_a_real_prometheus(prometheus: str) -> None:
    query_until(prometheus, "decisiontrail_decisions_ingested_total")  # the first scrape
    for title, expr in queries():
        result: list[dict[str, Any]] = query_until(
            prometheus, in_prometheus(expr), timeout=0 if title in EMPTY_WHEN_NOTHING_FAILS else 30
        )
        if title not in EMPTY_WHEN_NOTHING_FAILS:
            assert result, f"{title}: {expr!r} returned nothing"


def test_the_provisioned_datasource_is_the_dashboards() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"]
    assert [d["type"] for d in datasources] == ["prometheus"]
    (variable,) = DASHBOARD["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "decisiontrail.yaml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert httpx.URL(datasources[0]["url"]).host == "prometheus"  # compose's service name
