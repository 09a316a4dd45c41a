"""Fixtures for the deploy/ checks: one real service process that has recorded, verified and
erased, and its real /metrics text."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.service.server_process import ServerProcess, make_server

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DECISION = {"action": "answer", "kind": "llm_call", "input": "hi Alice", "personal": ["input"],
            "data_subjects": ["cust-1"]}  # fmt: skip


@dataclass
class ScrapedService:
    server: ServerProcess
    metrics_key: str  # a key with the metrics scope, as Prometheus sends it
    admin: dict[str, str]  # headers for every other call

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
    checkpoint every second, decisions by two agents, a verification and an erasure."""
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
            assert client.delete("/v1/data-subjects/cust-1").status_code == 200
        yield ScrapedService(server, metrics_key, admin)
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
