"""A real DecisionTrail server for the capture tests, and reading decisions back from it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.server_process import ServerProcess, make_server


@dataclass
class Trail:
    """A running service and a key that may ingest, read and audit."""

    server: ServerProcess
    key: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def decisions(self, agent: str) -> list[dict[str, Any]]:
        """Every decision of ``agent``, oldest first, as sealed records."""
        found: list[dict[str, Any]] = []
        cursor = None
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30) as client:
            while True:
                params: dict[str, Any] = {"agent": agent, "limit": 500}
                if cursor:
                    params["cursor"] = cursor
                page = client.get("/v1/decisions", params=params).raise_for_status().json()
                found.extend(item["record"] for item in page["data"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        found.sort(key=lambda record: record["sequence"])
        return found

    def verify(self) -> dict[str, Any]:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=120) as client:
            result: dict[str, Any] = client.post("/v1/verify", json={}).raise_for_status().json()
            return result


def start_trail(tmp_path: Path) -> Trail:
    tmp_path.mkdir(parents=True, exist_ok=True)
    server = make_server(tmp_path)
    server.start()
    output = server.cli(
        "keys", "create", "--tenant", "default",
        "--scope", "ingest", "--scope", "read", "--scope", "audit",
    )  # fmt: skip
    key = next(line for line in output.splitlines() if line.startswith("dtk_"))
    return Trail(server, key)


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    """One server for a test module (tests tell their decisions apart by agent name)."""
    started = start_trail(tmp_path_factory.mktemp("trail"))
    yield started
    started.server.stop()
