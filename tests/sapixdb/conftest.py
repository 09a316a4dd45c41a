"""Fixtures: one SDK suite over every transport (embedded SQLite, embedded PostgreSQL, HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sapixdb import AsyncSapixClient, SapixClient
from tests.pgcluster import Cluster
from tests.sapixdb.server_process import ServerProcess, start_server

TRANSPORTS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    "http",
    pytest.param("http-postgres", marks=pytest.mark.postgres),
]
HEARTBEAT = 0.3


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real open-mode server for the session; tests use their own collection names."""
    process = start_server(tmp_path_factory.mktemp("sapix-server"), "--heartbeat", str(HEARTBEAT))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def pg_server(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster
) -> Iterator[ServerProcess]:
    """One real open-mode server on PostgreSQL for the session."""
    database = pg_cluster.create_database()
    process = start_server(
        tmp_path_factory.mktemp("sapix-pg-server"),
        "--heartbeat",
        str(HEARTBEAT),
        storage=pg_cluster.url(database),
    )
    yield process
    process.stop()
    pg_cluster.drop_database(database)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(transport: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if transport == "sqlite":
        return f"sqlite:///{tmp_path}/embedded.db"
    if transport == "postgres":
        return str(request.getfixturevalue("pg_url"))
    served: ServerProcess = request.getfixturevalue(
        "pg_server" if transport == "http-postgres" else "server"
    )
    return served.url


@pytest.fixture
def db(url: str) -> Iterator[SapixClient]:
    with SapixClient(url=url, agent=f"g{uuid.uuid4().hex[:12]}") as client:
        yield client


@pytest.fixture
async def adb(url: str) -> AsyncIterator[AsyncSapixClient]:
    async with AsyncSapixClient(url=url, agent=f"g{uuid.uuid4().hex[:12]}") as client:
        yield client


@pytest.fixture
def name() -> str:
    """A collection name no other test uses (the HTTP server is shared)."""
    return f"c{uuid.uuid4().hex[:12]}"
