"""Scale-out: several service replicas on PostgreSQL (both SDKs embedded on one cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from decisiontrail.apikeys import Scope
from decisiontrail.app import create_app
from decisiontrail.config import Settings
from decisiontrail.state import ServiceState
from tests.pgcluster import Cluster
from tests.service.test_api import DECISION

pytestmark = pytest.mark.postgres


@pytest.fixture
def databases(pg_cluster: Cluster) -> Iterator[tuple[str, str]]:
    names = [pg_cluster.create_database() for _ in range(2)]
    yield pg_cluster.url(names[0]), pg_cluster.url(names[1])
    for name in names:
        pg_cluster.drop_database(name)


async def test_replicas_on_postgresql_never_fork_and_verify(
    tmp_path: Path, databases: tuple[str, str]
) -> None:
    sapix_url, genesis_url = databases
    settings = Settings(
        data_dir=tmp_path / "data", sapixdb_url=sapix_url, genesisdb_url=genesis_url
    )
    replicas = [await ServiceState.open(settings) for _ in range(3)]
    key, _ = await replicas[0].keys.create(
        tenant="acme", scopes=frozenset({Scope.INGEST, Scope.READ, Scope.AUDIT})
    )
    headers = {"Authorization": f"Bearer {key}"}
    clients = []
    for state in replicas:
        app = create_app(settings, state=state)
        app.state.service = state  # the ASGI transport runs no lifespan
        transport = httpx.ASGITransport(app=app)
        clients.append(
            httpx.AsyncClient(transport=transport, base_url="http://dt", headers=headers)
        )

    async def write(client: httpx.AsyncClient, replica: int) -> list[str]:
        ids = []
        for i in range(12):
            body = {**DECISION, "action": f"r{replica}-{i}"}
            response = await client.post("/v1/decisions", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids

    written = await asyncio.gather(*(write(c, n) for n, c in enumerate(clients)))
    everything = [decision_id for ids in written for decision_id in ids]
    report = (await clients[1].post("/v1/verify", json={})).json()
    assert report["ok"], report
    assert report["records_checked"] == 36 and report["stores"]["decisions_compared"] == 36
    listed = (await clients[2].get("/v1/decisions", params={"limit": 100})).json()["data"]
    assert sorted(d["record"]["id"] for d in listed) == sorted(everything)
    sequences = sorted(d["record"]["sequence"] for d in listed)
    assert sequences == list(range(36))  # one chain, no fork, no reuse
    for client in clients:
        await client.aclose()
    for state in replicas:
        await state.close()
