from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import pytest

import ledgerstore
from ledgerstore import LedgerStore
from ledgerstore.postgres import ERROR_MAP, PostgresStore
from tests.ledgerstore.conformance import StoreConformance
from tests.pgcluster import Cluster

pytestmark = pytest.mark.postgres


class TestPostgres(StoreConformance):
    @pytest.fixture(autouse=True)
    def _database(self, pg_cluster: Cluster, pg_database: str) -> None:
        self.cluster = pg_cluster
        self.database = pg_database

    @property
    def url(self) -> str:
        return self.cluster.url(self.database)

    def open(self, **options: Any) -> LedgerStore:
        return ledgerstore.open_store(self.url, **options)

    def raw(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.cluster.execute(self.database, statement.replace("?", "%s"), params)

    def snapshot(self) -> object:
        name = self.database + "_snap"
        self.cluster.execute("postgres", f'CREATE DATABASE "{name}" TEMPLATE "{self.database}"')
        return name

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, str)
        self.cluster.execute("postgres", f'DROP DATABASE "{self.database}" WITH (FORCE)')
        self.cluster.execute("postgres", f'ALTER DATABASE "{snapshot}" RENAME TO "{self.database}"')

    def database_files(self) -> list[Path]:
        data = self.cluster.data_dir
        return [p for p in (*data.rglob("base/*/*"), *data.rglob("pg_wal/*")) if p.is_file()]


def _subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def test_every_psycopg_error_has_a_mapping() -> None:
    mapped = {source for source, _ in ERROR_MAP}
    roots = (psycopg.Error, psycopg.Warning, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed)
    for root in roots:
        for error in _subclasses(root):
            assert any(issubclass(error, source) for source in mapped), error


def test_unreachable_server_is_an_operational_error() -> None:
    with pytest.raises(ledgerstore.OperationalError):
        PostgresStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout=1)
