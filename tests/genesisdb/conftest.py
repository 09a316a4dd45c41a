"""Fixtures for the Genesis DB SDK suite: one client per transport, and real servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genesisdb import Client
from tests.genesisdb.gdb_server import TOKENS, ServerProcess, start_server
from tests.pgcluster import Cluster

TRANSPORTS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    "http",
    pytest.param("http-postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server process for the whole session (tests use their own subjects)."""
    server = start_server(tmp_path_factory.mktemp("genesisdb-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_pg_server(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster
) -> Iterator[ServerProcess]:
    """One real server process on PostgreSQL for the whole session."""
    database = pg_cluster.create_database()
    server = start_server(
        tmp_path_factory.mktemp("genesisdb-pg-server"), storage=pg_cluster.url(database)
    )
    yield server
    server.stop()
    pg_cluster.drop_database(database)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api_url(transport: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if transport == "sqlite":
        return f"sqlite:///{tmp_path}/g.db"
    if transport == "postgres":
        return str(request.getfixturevalue("pg_url"))
    server: ServerProcess = request.getfixturevalue(
        "http_pg_server" if transport == "http-postgres" else "http_server"
    )
    return server.url


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[Client]:
    async with Client(
        {"api_url": api_url, "api_version": "v1", "auth_token": TOKENS["admin"]}
    ) as c:
        yield c


@pytest.fixture
def subject() -> str:
    """A subject no other test uses (the HTTP server is shared)."""
    return f"/t/{uuid.uuid4().hex}"
