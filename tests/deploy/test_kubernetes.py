"""deploy/kubernetes: every manifest validates against the Kubernetes schemas
(kubernetes-validate, strict), the Prometheus Operator's resources carry the same rules as
deploy/prometheus/rules.yml, and the Deployment is what the issue asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, RULES, SETTINGS_VARIABLES

MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
OPERATOR_API = "monitoring.coreos.com/v1"  # CRDs: no schema in kubernetes-validate


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [
        d for d in documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: Path(p).name)
def test_manifests_validate_against_the_kubernetes_schemas(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc["apiVersion"] == OPERATOR_API:
            continue  # checked below
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_deployment_runs_two_hardened_replicas_with_probes_and_limits() -> None:
    deployment = one("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's user
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    # The signing key comes from its own secret, read-only, apart from the data.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["signing-key"]["readOnly"] is True
    assert volumes["signing-key"]["secret"]["secretName"] == "decisiontrail-signing-key"
    assert mounts["signing-key"]["mountPath"] != mounts["data"]["mountPath"]
    one("Secret", "decisiontrail-signing-key")


def test_every_setting_named_is_one_the_service_has() -> None:
    deployment = one("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    names = {e["name"] for e in container["env"]}
    names |= set(one("ConfigMap", "decisiontrail")["data"])
    names |= set(one("Secret", "decisiontrail-stores")["stringData"])
    assert names and names <= SETTINGS_VARIABLES, names - SETTINGS_VARIABLES
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {"decisiontrail", "decisiontrail-stores"}


def test_the_budget_service_and_monitor_select_the_deployments_pods() -> None:
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    budget = one("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < one("Deployment")["spec"]["replicas"]
    service = one("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    monitor = one("ServiceMonitor")
    assert monitor["apiVersion"] == OPERATOR_API
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    credentials = endpoint["authorization"]["credentials"]
    assert credentials["key"] in one("Secret", credentials["name"])["stringData"]


def test_the_prometheus_rule_carries_the_checked_rules() -> None:
    rule = one("PrometheusRule")
    assert rule["apiVersion"] == OPERATOR_API
    assert rule["spec"] == yaml.safe_load(RULES.read_text())  # promtool checks those


def test_the_verification_cronjob_uses_an_existing_key_secret() -> None:
    job = one("CronJob")
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    (variable,) = container["env"]
    reference = variable["valueFrom"]["secretKeyRef"]
    assert reference["key"] in one("Secret", reference["name"])["stringData"]
    assert "/v1/verify" in container["command"][-1]
    service = one("Service")
    assert (
        f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
        in (container["command"][-1])
    )


def test_the_validator_rejects_what_kubernetes_would() -> None:
    deployment = one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = (
        "/readyz"  # a misspelt field, which kubectl apply would refuse
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)
