"""The CLI as an auditor or operator uses it: whole key ids, legal holds listed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decisiontrail.apikeys import Scope
from decisiontrail.cli import app
from tests.service.inprocess import Service, running

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DECISIONTRAIL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_keys_list_shows_whole_ids_that_revoke_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal used to cut the ids
    created = runner.invoke(
        app, ["keys", "create", "--tenant", "acme", "--scope", "read", "--label", "auditor"]
    )
    assert created.exit_code == 0, created.output
    key_id = re.findall(r"dtk_([0-9a-f]{16})_", created.output)[0]
    listed = runner.invoke(app, ["keys", "list"])
    assert key_id in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0 and f"revoked {key_id}" in revoked.output


def test_legal_holds_are_listed_by_api_and_cli(data_dir: Path) -> None:
    async def through_the_api() -> None:
        async with running(data_dir) as service:
            await hold_two_release_one(service)

    asyncio.run(through_the_api())
    listed = runner.invoke(app, ["legal-holds", "list", "--tenant", "acme"])
    assert listed.exit_code == 0, listed.output
    assert "legal holds in acme: 1" in listed.output
    assert "person-1" not in listed.output and "person-2" not in listed.output
    other = runner.invoke(app, ["legal-holds", "list", "--tenant", "other"])
    assert "legal holds in other: 0" in other.output


async def hold_two_release_one(service: Service) -> None:
    eraser = await service.key("acme", Scope.ERASE)
    await service.record(await service.key("acme"), data_subjects=["person-1"])
    for subject in ("person-1", "person-2"):
        placed = await service.client.put(f"/v1/data-subjects/{subject}/legal-hold", headers=eraser)
        assert placed.status_code == 200
    await service.client.delete("/v1/data-subjects/person-2/legal-hold", headers=eraser)
    holds = (await service.client.get("/v1/legal-holds", headers=eraser)).json()["data"]
    assert len(holds) == 1 and re.fullmatch(r"[0-9a-f]{32}", holds[0]["subject_key"])
    reader = await service.key("acme", Scope.READ)
    assert (await service.client.get("/v1/legal-holds", headers=reader)).status_code == 403
    assert "person-1" not in str(holds)
