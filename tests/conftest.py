from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pgcluster import Cluster, ClusterUnavailable, start_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the session; skipped only where none can be started."""
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_database(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database in the session's cluster."""
    name = pg_cluster.create_database()
    yield name
    pg_cluster.drop_database(name)


@pytest.fixture
def pg_url(pg_cluster: Cluster, pg_database: str) -> str:
    return pg_cluster.url(pg_database)
