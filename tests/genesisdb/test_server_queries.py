"""The GDBQL conformance table over HTTP: a real server restored from the fixture answers every
query with the evaluator's rows, one NDJSON line each."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from genesisdb.gdbql import execute, parse
from tests.genesisdb.chained_fixture import FIXTURE
from tests.genesisdb.gdb_server import TOKENS, ServerProcess, start_server
from tests.genesisdb.gdbql_cases import CASES, Case

AUTH = {"Authorization": f"Bearer {TOKENS['admin']}"}


@pytest.fixture(scope="module")
def restored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server: ServerProcess = start_server(tmp_path_factory.mktemp("queries"))
    try:
        with httpx.Client(base_url=f"{server.url}/api/v1", headers=AUTH, timeout=30) as client:
            restore = client.post("/backup/restore", json=FIXTURE)
            assert restore.status_code == 200 and restore.json() == {"restored": len(FIXTURE)}
            yield client
    finally:
        server.stop()


def test_the_backup_is_the_fixture(restored: httpx.Client) -> None:
    assert restored.get("/backup/create").json() == FIXTURE
    assert restored.get("/status/audit").json()["valid"] is True


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_rows_are_ndjson_lines(restored: httpx.Client, case: Case) -> None:
    response = restored.post("/q", json={"query": case.query})
    assert response.status_code == 200
    expected = list(execute(parse(case.query), FIXTURE))
    assert response.content == b"".join(orjson.dumps(row) + b"\n" for row in expected)
