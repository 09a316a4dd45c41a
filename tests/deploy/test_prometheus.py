"""deploy/prometheus: the rules pass promtool's checks and unit tests, the service's real
/metrics passes `promtool check metrics`, and a real Prometheus, configured from
deploy/prometheus/prometheus.yml, scrapes a running service and answers for its ingest
counter."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ScrapedService, required_tool
from tests.ports import free_port
from tests.processes import stop_process, wait_until_answering

RULES = DEPLOY / "prometheus" / "rules.yml"


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


def scrape_config_for(service: ScrapedService, work: Path) -> Path:
    """deploy/prometheus/prometheus.yml with what differs in a test: the rules' path, the
    key's file and one static target on loopback instead of the compose network's DNS."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    key_file = work / "metrics-key"
    key_file.write_text(service.metrics_key)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES)]
    (job,) = config["scrape_configs"]
    job["authorization"]["credentials_file"] = str(key_file)
    del job["dns_sd_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{service.server.port}"]}]
    path = work / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(scraped_service: ScrapedService, tmp_path: Path) -> Iterator[str]:
    binary = required_tool("prometheus")
    config = scrape_config_for(scraped_service, tmp_path)
    checked = promtool("check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(
        process, lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200,
        log=log, timeout=60,
    )  # fmt: skip
    yield url
    stop_process(process, timeout=30)


def query_until(url: str, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert answer["status"] == "success", answer
        if answer["data"]["result"] or time.monotonic() > deadline:
            return list(answer["data"]["result"])
        time.sleep(0.5)


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
