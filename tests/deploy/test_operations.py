"""The README's deployment section, run as written: two replicas on one PostgreSQL, a backup
with pg_dump and a copy of the key directory, the databases and keys destroyed, a restore and a
verification; a signing-key rotation with the CLI, old and new records verifying."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import DECISION, create_key
from tests.pgcluster import Cluster
from tests.service.server_process import ServerProcess, make_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def databases(pg_cluster: Cluster) -> Iterator[dict[str, str]]:
    names = {"sapixdb": pg_cluster.create_database(), "genesisdb": pg_cluster.create_database()}
    yield names
    for name in names.values():
        pg_cluster.drop_database(name)


def replica(
    tmp_path: Path, cluster: Cluster, databases: dict[str, str], name: str
) -> ServerProcess:
    """A service process on the shared databases and the shared key directory."""
    server = make_server(
        tmp_path / name, sapixdb_url=cluster.url(databases["sapixdb"]),
        genesisdb_url=cluster.url(databases["genesisdb"]),
        signing_key_dir=str(tmp_path / "keys"), checkpoint_interval_seconds="1",
    )  # fmt: skip
    server.data_dir.mkdir(parents=True)
    return server


def record(server: ServerProcess, headers: dict[str, str], agent: str) -> str:
    answer = httpx.post(f"{server.url}/v1/decisions", headers=headers, timeout=30,
                        json={**DECISION, "agent": agent})  # fmt: skip
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def verified(server: ServerProcess, headers: dict[str, str]) -> bool:
    answer = httpx.post(f"{server.url}/v1/verify", headers=headers, json={}, timeout=120).json()
    return bool(answer["ok"])


def read(server: ServerProcess, headers: dict[str, str], decision_id: str) -> dict[str, object]:
    answer = httpx.get(f"{server.url}/v1/decisions/{decision_id}", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    record: dict[str, object] = answer.json()["record"]
    return record


def test_two_replicas_back_up_destroy_restore_verify(
    pg_cluster: Cluster, databases: dict[str, str], tmp_path: Path
) -> None:
    first, second = (replica(tmp_path, pg_cluster, databases, n) for n in ("a", "b"))
    # README: the key directory is made once, before the replicas start.
    first.cli("keys", "list")
    keys = sorted(path.name for path in (tmp_path / "keys").iterdir())
    assert "keyring.json" in keys and "subject-pepper" in keys
    headers = {"Authorization": f"Bearer {create_key(first, 'admin')}"}
    first.start()
    second.start()
    try:
        ids = [record(server, headers, f"agent-{i}") for i in range(6)
               for server in (first, second)]  # fmt: skip
        assert verified(first, headers) and verified(second, headers)
        assert read(second, headers, ids[0]) == read(first, headers, ids[0])
    finally:
        first.stop()
        second.stop()

    # Back up (README): pg_dump of both databases, a copy of the key directory.
    backup = tmp_path / "backup"
    backup.mkdir()
    for store, database in databases.items():
        subprocess.run(
            [pg_cluster.bindir / "pg_dump", "--format=custom", f"--file={backup / store}.dump",
             pg_cluster.url(database)], check=True, timeout=120,
        )  # fmt: skip
    shutil.copytree(tmp_path / "keys", backup / "keys")

    # Destroy: the databases and the key directory are gone.
    for database in databases.values():
        pg_cluster.drop_database(database)
    shutil.rmtree(tmp_path / "keys")

    # Restore (README): new empty databases, pg_restore, the key directory back.
    for store, database in databases.items():
        pg_cluster.execute("postgres", f'CREATE DATABASE "{database}"')
        subprocess.run(
            [pg_cluster.bindir / "pg_restore", "--no-owner", f"--dbname={pg_cluster.url(database)}",
             f"{backup / store}.dump"], check=True, timeout=120,
        )  # fmt: skip
    shutil.copytree(backup / "keys", tmp_path / "keys")

    restored = replica(tmp_path, pg_cluster, databases, "restored")
    restored.start()
    try:
        assert verified(restored, headers)  # the API keys came back with the data
        listed = httpx.get(f"{restored.url}/v1/decisions", headers=headers,
                           params={"limit": 100}, timeout=30).json()  # fmt: skip
        assert sorted(d["record"]["id"] for d in listed["data"]) == sorted(ids)
        new = record(restored, headers, "after-restore")
        assert read(restored, headers, new)["decision"]["agent"] == "after-restore"  # type: ignore[index]
        assert verified(restored, headers)
    finally:
        restored.stop()
    report = json.loads(restored.cli("verify", "--tenant", "default"))  # exits 0 only if ok
    assert report["ok"] is True and report["records_checked"] >= len(ids) + 1


def test_signing_key_rotation_keeps_old_records_verifying(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    server.data_dir.mkdir(parents=True)
    headers = {"Authorization": f"Bearer {create_key(server, 'admin')}"}
    server.start()
    try:
        before = record(server, headers, "before-rotation")
    finally:
        server.stop()
    assert "new signing key" in server.cli("signing-keys", "rotate")
    server.start()
    try:
        after = record(server, headers, "after-rotation")
        old_key, new_key = (read(server, headers, i)["key_id"] for i in (before, after))
        assert old_key != new_key
        trust = httpx.get(f"{server.url}/v1/trust-root", timeout=10).json()
        assert {k["key_id"] for k in trust["keys"]} >= {old_key, new_key}
        assert verified(server, headers)
    finally:
        server.stop()
