"""Fixtures for the deploy/ checks: one real service process that has recorded, verified and
erased, and its real /metrics text."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from decisiontrail.config import Settings
from tests.ports import free_port
from tests.processes import stop_process, wait_until_answering
from tests.service.server_process import ServerProcess, make_server

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
# Every variable the service reads: DECISIONTRAIL_ and a Settings field's name.
SETTINGS_VARIABLES = frozenset(f"DECISIONTRAIL_{name.upper()}" for name in Settings.model_fields)
DECISION = {"action": "answer", "kind": "llm_call", "input": "hi Alice", "personal": ["input"],
            "data_subjects": ["cust-1"]}  # fmt: skip


@dataclass
class ScrapedService:
    server: ServerProcess
    metrics_key: str  # a key with the metrics scope, as Prometheus sends it

    def metrics(self) -> str:
        response = httpx.get(
            f"{self.server.url}/metrics",
            headers={"Authorization": f"Bearer {self.metrics_key}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.text


def create_key(server: ServerProcess, *scopes: str) -> str:
    args = ["keys", "create", "--tenant", "default"]
    for scope in scopes:
        args += ["--scope", scope]
    return next(line for line in server.cli(*args).splitlines() if line.startswith("dtk_"))


@pytest.fixture(scope="module")
def scraped_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScrapedService]:
    """A service that has done a little of everything its dashboard and alerts look at: a
    checkpoint every second, decisions by two agents, a refused body, a verification and an
    erasure."""
    server = make_server(tmp_path_factory.mktemp("service"), checkpoint_interval_seconds="1")
    server.data_dir.mkdir(parents=True)
    metrics_key = create_key(server, "metrics")
    admin = {"Authorization": f"Bearer {create_key(server, 'admin')}"}
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers=admin, timeout=30) as client:
            for agent in ("planner", "support-bot"):
                decision = {**DECISION, "agent": agent}
                assert client.post("/v1/decisions", json=decision).status_code == 201
            assert client.post("/v1/verify", json={}).json()["ok"] is True
            assert client.post("/v1/decisions", json={}).status_code == 422
            assert client.delete("/v1/data-subjects/cust-1").status_code == 200
        yield ScrapedService(server, metrics_key)
    finally:
        server.stop()


def required_tool(path: str) -> str:
    """A Debian tool the deploy checks run (installed by .ci/run): skipped where it is
    missing, except in CI, which must run every check."""
    if shutil.which(path) is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the deploy checks: {path} is not installed")
        pytest.skip(f"{path} is not installed here")
    return path


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


@pytest.fixture(scope="module")
def prometheus(
    scraped_service: ScrapedService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Prometheus (Debian's) scraping ``scraped_service`` every second, with the rules."""
    tmp_path = tmp_path_factory.mktemp("prometheus")
    binary = required_tool("prometheus")
    config = scrape_config_for(scraped_service, tmp_path)
    checked = subprocess.run([required_tool("promtool"), "check", "config", str(config)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
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
