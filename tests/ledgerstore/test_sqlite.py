from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import ledgerstore
from ledgerstore import LedgerStore, NewEntry
from ledgerstore.sqlite import ERROR_MAP, SQLiteStore
from tests.ledgerstore.conformance import StoreConformance


class TestSQLite(StoreConformance):
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.path = tmp_path / "ledger.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def open(self, **options: Any) -> LedgerStore:
        return ledgerstore.open_store(self.url, **options)

    def raw(self, statement: str, params: Sequence[Any] = ()) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute(statement, params)
        finally:
            conn.close()

    def snapshot(self) -> object:
        copy = self.path.with_suffix(".snapshot")
        conn = sqlite3.connect(self.path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        shutil.copyfile(self.path, copy)
        return copy

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, Path)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(snapshot, self.path)

    def database_files(self) -> list[Path]:
        return sorted(self.path.parent.glob(self.path.name + "*"))


def test_url_forms(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path}/a.db", str(tmp_path / "b.db"), tmp_path / "c.db"):
        store = ledgerstore.open_store(url)
        assert isinstance(store, SQLiteStore)
        store.append(NewEntry("x", {}))
        store.close()
    store = ledgerstore.open_store(f"sqlite:///{tmp_path}/d.db?synchronous=NORMAL")
    assert isinstance(store, SQLiteStore) and store.synchronous == "NORMAL"
    store.close()
    with pytest.raises(ledgerstore.InvalidArgumentError):
        ledgerstore.open_store("mysql://x")
    with pytest.raises(ledgerstore.InvalidArgumentError):
        ledgerstore.open_store(f"sqlite:///{tmp_path}/e.db?synchronous=SOMETIMES")


def test_acknowledged_appends_are_in_the_file_in_wal_full_mode(tmp_path: Path) -> None:
    store = ledgerstore.open_store(tmp_path / "durable.db")
    entry = store.append(NewEntry("x", {"acked": True}))
    # A second connection (another process would see the same) finds the committed row.
    conn = sqlite3.connect(tmp_path / "durable.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM ls_entries").fetchone()[0] == 1
    conn.close()
    assert store.get(entry.id) == entry  # type: ignore[union-attr]
    store.close()


def test_schema_is_versioned_and_newer_versions_are_refused(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "v.db")
    assert store.schema_version == len(SQLiteStore.migrations)
    store.close()
    conn = sqlite3.connect(tmp_path / "v.db")
    conn.execute("UPDATE ls_schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(ledgerstore.ProgrammingError):
        SQLiteStore(tmp_path / "v.db")


def _subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def test_every_sqlite3_error_has_a_mapping() -> None:
    mapped = {source for source, _ in ERROR_MAP}
    for error in _subclasses(sqlite3.Error) | _subclasses(sqlite3.Warning):
        assert any(issubclass(error, source) for source in mapped), error
