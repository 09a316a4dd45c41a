"""deploy/compose.yaml: valid for Debian's docker-compose (`config` checks it against the
Compose specification's schema), and it uses only settings the service has, files that exist
and the rules, dashboard and image the other checks test."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, SETTINGS_VARIABLES, required_tool

COMPOSE = DEPLOY / "compose.yaml"
NGINX_CONF = DEPLOY / "compose" / "nginx.conf"
PASSWORDS = {"POSTGRES_PASSWORD": "pg-secret-for-the-test", "GRAFANA_ADMIN_PASSWORD": "gf-test"}


def compose_config(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if k not in PASSWORDS}
    return subprocess.run(
        [required_tool("docker-compose"), "-f", str(path), "config"], capture_output=True,
        text=True, timeout=120, env={**variables, **env},
    )  # fmt: skip


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    """The file as docker-compose resolves it: validated, interpolated, paths made absolute."""
    result = compose_config(COMPOSE, **PASSWORDS)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_refuses_to_start_without_the_passwords() -> None:
    result = compose_config(COMPOSE)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD" in result.stderr


def test_compose_rejects_what_the_specification_does_not_allow(tmp_path: Path) -> None:
    broken = COMPOSE.read_text().replace("replicas: 2", "replicas: two")
    (tmp_path / "compose.yaml").write_text(broken)
    result = compose_config(tmp_path / "compose.yaml", **PASSWORDS)
    assert result.returncode != 0 and "replicas" in result.stderr


def test_two_replicas_behind_a_proxy_on_postgresql(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert set(services) == {"postgres", "signing-key", "decisiontrail", "proxy", "prometheus",
                             "grafana"}  # fmt: skip
    service = services["decisiontrail"]
    assert service["deploy"]["replicas"] >= 2
    assert "ports" not in service  # reached through the proxy only
    assert services["proxy"]["depends_on"]["decisiontrail"]
    environment = service["environment"]
    for store in ("SAPIXDB", "GENESISDB"):
        url = environment[f"DECISIONTRAIL_{store}_URL"]
        assert url.startswith("postgresql://decisiontrail:pg-secret-for-the-test@postgres:5432/")
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["depends_on"]["signing-key"]["condition"] == "service_completed_successfully"
    assert Path(service["build"]["context"]) == DEPLOY.parent
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    nginx = NGINX_CONF.read_text()
    assert "decisiontrail:8700" in nginx and "proxy_buffering off" in nginx


def test_only_settings_the_service_has(rendered: dict[str, Any]) -> None:
    for name in ("decisiontrail", "signing-key"):
        variables = set(rendered["services"][name]["environment"])
        assert variables <= SETTINGS_VARIABLES, variables - SETTINGS_VARIABLES


def test_the_signing_key_is_read_only_and_apart_from_the_data(rendered: dict[str, Any]) -> None:
    replicas = rendered["services"]["decisiontrail"]
    (key_volume,) = [v for v in replicas["volumes"] if v.startswith("signing-keys:")]
    assert key_volume == "signing-keys:/var/lib/decisiontrail-keys:ro"
    assert replicas["read_only"] is True
    writer = rendered["services"]["signing-key"]
    assert writer["volumes"] == ["signing-keys:/var/lib/decisiontrail-keys:rw"]
    # The step opens the same stores and key directory as the replicas, once PostgreSQL is up.
    assert writer["environment"] == replicas["environment"]
    assert writer["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert writer["command"] == ["keys", "list"]  # idempotent: no key made on a re-run


def test_monitoring_mounts_the_checked_rules_and_dashboard(rendered: dict[str, Any]) -> None:
    mounted: dict[str, str] = {}
    for name in ("postgres", "proxy", "prometheus", "grafana"):
        for volume in rendered["services"][name].get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts {source}, which does not exist"
                mounted[target] = source
    assert mounted["/etc/prometheus/rules.yml"] == str(DEPLOY / "prometheus" / "rules.yml")
    assert mounted["/etc/prometheus/prometheus.yml"] == str(
        DEPLOY / "prometheus" / "prometheus.yml"
    )
    assert mounted["/var/lib/grafana/dashboards"] == str(DEPLOY / "grafana" / "dashboards")
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["authorization"]["credentials_file"] == "/run/secrets/metrics-key"
    assert "metrics-key" in rendered["services"]["prometheus"]["secrets"][0]["source"]
    assert job["dns_sd_configs"][0]["names"] == ["decisiontrail"]


def test_the_proxy_configuration_passes_nginx_t(tmp_path: Path) -> None:
    """Debian's nginx checks deploy/compose/nginx.conf (nginx -t): directives, blocks, values."""
    result = subprocess.run(
        [required_tool("nginx"), "-t", "-p", str(tmp_path), "-c", str(NGINX_CONF),
         "-g", f"pid {tmp_path / 'nginx.pid'}; error_log stderr;"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
