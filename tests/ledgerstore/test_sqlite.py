from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


class _RecordingCursor:
    """Captures the SQL a read would run, so its query plan can be inspected."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, list[Any]]] = []

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.statements.append((statement, list(params)))

    def fetchall(self) -> list[Any]:
        return []

    def fetchone(self) -> tuple[int]:
        return (1,)


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (ledgerstore.EntryFilter(types=frozenset({"created"})), "ls_entries_type"),
        (ledgerstore.EntryFilter(subject_under="/customer/42"), "ls_entries_subject"),
        (ledgerstore.EntryFilter(subject="/customer/42"), "ls_entries_subject"),
        (ledgerstore.EntryFilter(key="k1"), "ls_entries_key"),
        (ledgerstore.EntryFilter(seq_min=10, seq_max=20), "ls_entries_log_seq"),
    ],
)
def test_metadata_filters_are_pushed_down_to_indexes(
    tmp_path: Path, where: ledgerstore.EntryFilter, index: str
) -> None:
    from ledgerstore.store import _Queries

    store = SQLiteStore(tmp_path / "plan.db")
    store.append_batch(
        [NewEntry("ev", {"i": i}, type=f"t{i % 7}", subject=f"/customer/{i}", key=f"k{i % 5}")
         for i in range(2000)]
    )  # fmt: skip
    conn = sqlite3.connect(tmp_path / "plan.db")
    conn.execute("ANALYZE")
    recorder = _RecordingCursor()
    _Queries(store, recorder).chunk(1, where, False, None, 100)
    _Queries(store, recorder).count(1, where)
    for statement, params in recorder.statements:
        plan = " ".join(
            str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params)
        )
        assert index in plan, (statement, plan)
        assert "SCAN ls_entries" not in plan.replace(f"USING INDEX {index}", ""), plan
    conn.close()
    store.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.binary(max_size=64)), max_size=12),
        min_size=1,
        max_size=8,
    )
)
def test_any_sequence_of_batches_keeps_every_invariant(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[str, bytes]]]
) -> None:
    from ledgerstore import merkle
    from ledgerstore.chain import GENESIS_HASH

    store = SQLiteStore(tmp_path_factory.mktemp("prop") / "p.db")
    try:
        for batch in batches:
            store.append_batch([NewEntry(log, payload) for log, payload in batch])
        expected = {log: [p for b in batches for lg, p in b if lg == log] for log in "abc"}
        for info in store.logs():
            entries = list(store.read(info.name))
            assert [e.value() for e in entries] == expected[info.name]
            assert [e.seq for e in entries] == list(range(len(entries)))
            links = [GENESIS_HASH] + [e.hash for e in entries[:-1]]
            assert [e.prev_hash for e in entries] == links
            assert info.root == merkle.root_from_leaves([e.hash for e in entries])
            assert store.verify(info.name).ok
        positions = [e.position for e in store.read()]
        assert positions == list(range(1, sum(len(b) for b in batches) + 1))
    finally:
        store.close()


def test_many_openers_of_one_fresh_database_all_succeed(tmp_path: Path) -> None:
    # Switching to WAL answers "database is locked" at once (no busy handler) while another
    # opener migrates the new file: every opener must wait for it instead of failing.
    import threading

    path = tmp_path / "fresh.db"
    start = threading.Barrier(8)
    failures: list[BaseException] = []
    stores: list[Any] = []

    def open_it() -> None:
        start.wait()
        try:
            stores.append(ledgerstore.open_store(f"sqlite:///{path}"))
        except BaseException as exc:  # collected for the assertion below
            failures.append(exc)

    for _ in range(5):  # a race: several rounds on fresh files
        path = tmp_path / f"fresh-{len(stores)}.db"
        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(stores) == 40
    stores[0].append(ledgerstore.NewEntry("log", {"n": 1}))
    for store in stores:
        store.close()
