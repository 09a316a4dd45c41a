"""deploy/prometheus: the rules pass promtool's checks and unit tests, the service's real
/metrics passes `promtool check metrics`, and a real Prometheus, configured from
deploy/prometheus/prometheus.yml, scrapes a running service and answers for its ingest
counter."""

from __future__ import annotations

import subprocess

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, RULES, ScrapedService, query_until, required_tool


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [required_tool("promtool"), *args], input=stdin, capture_output=True, text=True,
        timeout=120, cwd=DEPLOY / "prometheus",
    )  # fmt: skip


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((DEPLOY / "prometheus" / "rules_test.yml").read_text())["tests"]
    tested = {a["alertname"] for t in tests for a in t.get("alert_rule_test", [])}
    assert alerts and alerts == tested


def test_real_metrics_pass_promtool_check_metrics(scraped_service: ScrapedService) -> None:
    text = scraped_service.metrics()
    assert "decisiontrail_decisions_ingested_total" in text
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_real_prometheus_scrapes_the_ingest_counter(
    prometheus: str, scraped_service: ScrapedService
) -> None:
    result = query_until(prometheus, "decisiontrail_decisions_ingested_total")
    by_agent = {r["metric"]["agent"]: float(r["value"][1]) for r in result}
    assert by_agent == {"planner": 1.0, "support-bot": 1.0}
    assert {r["metric"]["job"] for r in result} == {"decisiontrail"}

    (target,) = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    assert target["health"] == "up", target

    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {g["name"] for g in groups} == {"decisiontrail.recording", "decisiontrail.alerts"}
    recorded = query_until(prometheus, "decisiontrail:decisions_ingested_by_agent_kind:rate5m")
    assert {r["metric"]["agent"] for r in recorded} == {"planner", "support-bot"}
