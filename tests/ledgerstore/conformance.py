"""The backend-agnostic ledgerstore suite. Each backend's test module subclasses
:class:`StoreConformance` and supplies a store factory and raw access to its database, which
the tamper tests use to change the data behind the store's back."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import ledgerstore
from ledgerstore import (
    EntryFilter,
    InvalidArgumentError,
    InvalidEntryError,
    LedgerStore,
    NewEntry,
    PayloadFormat,
    PayloadTooLargeError,
    ProblemKind,
    SideValue,
    StoreClosedError,
    TreeHead,
    UnknownLogError,
    merkle,
)
from ledgerstore.chain import GENESIS_HASH, recompute_hash


def _append_worker(url: str, log: str, count: int, worker: int) -> None:
    store = ledgerstore.open_store(url)
    try:
        for i in range(count):
            store.append(NewEntry(log, {"worker": worker, "i": i}))
    finally:
        store.close()


class StoreConformance(ABC):
    """Every backend must pass all of these."""

    @abstractmethod
    def open(self, **options: Any) -> LedgerStore:
        """Open the backend's store (the same database on every call within a test)."""

    @property
    @abstractmethod
    def url(self) -> str: ...

    @abstractmethod
    def raw(self, statement: str, params: Sequence[Any] = ()) -> None:
        """Run SQL (with ``?`` placeholders) on a separate connection, behind the store's back."""

    @abstractmethod
    def snapshot(self) -> object:
        """Copy the whole database aside (the store must be closed)."""

    @abstractmethod
    def restore(self, snapshot: object) -> None:
        """Put an earlier copy back in place of the database (the store must be closed)."""

    @abstractmethod
    def database_files(self) -> list[Path]:
        """Every file the database keeps on disk, write-ahead log included."""

    @pytest.fixture
    def store(self) -> Iterator[LedgerStore]:
        store = self.open()
        yield store
        store.close()

    def fill(self, store: LedgerStore, log: str = "main", n: int = 20) -> list[ledgerstore.Entry]:
        return store.append_batch([NewEntry(log, {"n": i, "text": f"entry {i}"}) for i in range(n)])

    # --- appends --------------------------------------------------------------------------

    def test_append_assigns_sequence_position_hlc_and_chain(self, store: LedgerStore) -> None:
        first = store.append(NewEntry("orders", {"item": "book"}, type="created", subject="/o/1"))
        second = store.append(NewEntry("orders", b"\x00raw", key="k"))
        other = store.append(NewEntry("invoices", {"total": 3}))
        assert (first.seq, second.seq, other.seq) == (0, 1, 0)
        assert first.position < second.position < other.position
        assert first.hlc < second.hlc < other.hlc
        assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
        assert uuid.UUID(first.id).version == 7
        assert first.value() == {"item": "book"} and second.value() == b"\x00raw"
        assert second.format is PayloadFormat.BYTES
        assert recompute_hash(first) == first.hash
        assert store.get(first.id) == first
        assert store.log_info("orders").size == 2
        assert store.last_position() == other.position

    def test_msgpack_payload_round_trips(self, store: LedgerStore) -> None:
        entry = store.append(NewEntry("m", {"a": [1, 2, b"x"]}, format=PayloadFormat.MSGPACK))
        stored = store.get(entry.id)
        assert stored is not None and stored.value() == {"a": [1, 2, b"x"]}

    def test_batch_spans_logs_atomically(self, store: LedgerStore) -> None:
        entries = store.append_batch(
            [NewEntry("a", {"i": 0}), NewEntry("b", {"i": 1}), NewEntry("a", {"i": 2})]
        )
        assert [(e.log, e.seq) for e in entries] == [("a", 0), ("b", 0), ("a", 1)]
        assert [e.position for e in entries] == sorted(e.position for e in entries)
        assert entries[2].prev_hash == entries[0].hash

    def test_invalid_entry_in_batch_writes_nothing(self, store: LedgerStore) -> None:
        self.fill(store, n=3)
        with pytest.raises(InvalidEntryError):
            store.append_batch([NewEntry("main", {"ok": 1}), NewEntry("main", {"bad": {1, 2}})])
        with pytest.raises(InvalidEntryError):
            store.append_batch([NewEntry("main", {"ok": 1}), NewEntry("", {"x": 1})])
        assert store.log_info("main").size == 3
        assert store.verify("main").ok

    def test_failure_inside_the_transaction_writes_nothing(self, store: LedgerStore) -> None:
        store.append(NewEntry("main", {"i": 0}), side=[SideValue("ref-1", "/s/1", b"v")])
        before = store.last_position()
        with pytest.raises(ledgerstore.IntegrityError):
            store.append_batch(
                [NewEntry("main", {"i": 1}), NewEntry("fresh", {"i": 2})],
                side=[SideValue("ref-1", "/s/1", b"again")],
            )
        assert store.last_position() == before
        assert store.log_info("main").size == 1
        with pytest.raises(UnknownLogError):
            store.log_info("fresh")
        assert store.side_get(["ref-1"]) == {"ref-1": b"v"}
        assert store.verify("main").ok

    def test_check_sees_the_transaction_and_aborts_it(self, store: LedgerStore) -> None:
        self.fill(store, n=2)

        class Refused(Exception):
            pass

        def refuse_if_present(reader: ledgerstore.Reader) -> None:
            info = reader.log_info("main")
            if info is not None and reader.count("main", EntryFilter(seq_min=1)) > 0:
                raise Refused

        with pytest.raises(Refused):
            store.append(NewEntry("main", {"x": 1}), check=refuse_if_present)
        assert store.log_info("main").size == 2
        seen: list[int] = []
        store.append(NewEntry("other", {}), check=lambda r: seen.append(len(list(r.read("main")))))
        assert seen == [2]

    def test_bad_input_raises_typed_errors(self, store: LedgerStore) -> None:
        with pytest.raises(InvalidEntryError):
            store.append(NewEntry(123, {}))  # type: ignore[arg-type]
        with pytest.raises(InvalidEntryError):
            store.append(NewEntry("x", {}, type=5))  # type: ignore[arg-type]
        with pytest.raises(InvalidEntryError):
            store.append(NewEntry("x", {}, subject="a\x00b"))
        with pytest.raises(InvalidEntryError):
            store.append(NewEntry("x", {}, flags=-1))
        with pytest.raises(InvalidEntryError):
            store.append(NewEntry("x", "text", format=PayloadFormat.BYTES))
        with pytest.raises(InvalidEntryError):
            store.append(NewEntry("x", "\ud800"))
        with pytest.raises(InvalidEntryError):
            store.append({"log": "x"})  # type: ignore[arg-type]
        with pytest.raises(InvalidEntryError):
            store.append(NewEntry("x", {}), side=[SideValue("r", "/s", "not bytes")])  # type: ignore[arg-type]
        with pytest.raises(UnknownLogError):
            store.log_info("missing")
        with pytest.raises(UnknownLogError):
            list(store.read("missing"))
        with pytest.raises(InvalidArgumentError):
            store.get("not-a-uuid")
        store.append(NewEntry("x", {}))
        with pytest.raises(InvalidArgumentError):
            list(store.read("x", {"types": "a"}))  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            store.count("x", EntryFilter(types="abc"))  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            store.count("x", EntryFilter(seq_min="3"))  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            list(store.read("x", limit=-1))
        assert store.get(str(uuid.uuid4())) is None
        assert [info.name for info in store.logs()] == ["x"]

    def test_oversize_payload_is_refused(self) -> None:
        store = self.open(max_payload_bytes=1000)
        try:
            with pytest.raises(PayloadTooLargeError):
                store.append(NewEntry("x", b"a" * 1001))
            with pytest.raises(PayloadTooLargeError):
                store.append(NewEntry("x", {}), side=[SideValue("r", "/s", b"a" * 1001)])
            store.append(NewEntry("x", b"a" * 1000))
            assert store.log_info("x").size == 1
        finally:
            store.close()

    def test_closed_store_refuses_everything(self) -> None:
        store = self.open()
        store.append(NewEntry("x", {}))
        store.close()
        with pytest.raises(StoreClosedError):
            store.append(NewEntry("x", {}))
        with pytest.raises(StoreClosedError):
            store.log_info("x")
        with pytest.raises(StoreClosedError):
            list(store.read("x"))

    def test_hlc_stays_monotonic_when_the_wall_clock_steps_back(
        self, store: LedgerStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = store.append(NewEntry("clock", {}))
        monkeypatch.setattr(time, "time_ns", lambda: (first.timestamp_ms - 60_000) * 1_000_000)
        later = store.append_batch([NewEntry("clock", {}) for _ in range(3)])
        assert [e.hlc for e in later] == [first.hlc + 1, first.hlc + 2, first.hlc + 3]

    def test_reopening_keeps_everything(self) -> None:
        store = self.open()
        written = self.fill(store, n=5)
        store.close()
        store = self.open()
        try:
            assert list(store.read("main")) == written
            assert store.append(NewEntry("main", {})).seq == 5
            assert store.verify("main").ok
        finally:
            store.close()

    # --- reads ----------------------------------------------------------------------------

    def test_reads_by_range_order_time_and_metadata(self, store: LedgerStore) -> None:
        entries = store.append_batch(
            [
                NewEntry("ev", {"i": i}, type="even" if i % 2 == 0 else "odd",
                         subject=["/customer", "/customer/42", "/customer/42/orders/7",
                                  "/customers/9", "/customer-x"][i % 5], key=f"k{i % 3}")
                for i in range(30)
            ]
        )  # fmt: skip
        store.append(NewEntry("other", {"i": 99}, type="even", subject="/customer"))
        assert [e.seq for e in store.read("ev", EntryFilter(seq_min=5, seq_max=8))] == [5, 6, 7, 8]
        assert [e.seq for e in store.read("ev", reverse=True, limit=3)] == [29, 28, 27]
        assert len(list(store.read("ev", limit=0))) == 0
        bound = entries[10].hlc
        assert [e.seq for e in store.read("ev", EntryFilter(hlc_max=bound))] == list(range(11))
        assert [e.seq for e in store.read("ev", EntryFilter(hlc_min=bound), limit=2)] == [10, 11]
        odd = [e.seq for e in store.read("ev", EntryFilter(types=frozenset({"odd"})))]
        assert odd == list(range(1, 30, 2))
        under = {e.subject for e in store.read("ev", EntryFilter(subject_under="/customer"))}
        assert under == {"/customer", "/customer/42", "/customer/42/orders/7"}
        below = {e.subject for e in store.read("ev", EntryFilter(subject_below="/customer"))}
        assert below == {"/customer/42", "/customer/42/orders/7"}
        assert store.count("ev", EntryFilter(subject_under="/customer/42")) == 12
        assert store.count("ev", EntryFilter(subject="/customers/9", key="k0")) == 2
        some = [e.seq for e in store.read("ev", EntryFilter(keys=frozenset({"k0", "k2", "no"})))]
        assert some == [i for i in range(30) if i % 3 != 1]
        assert store.count("ev", EntryFilter(keys=frozenset())) == 0
        wanted = frozenset({"/customers/9", "/customer/42", "/nowhere"})
        picked = [e.subject for e in store.read("ev", EntryFilter(subjects=wanted))]
        assert picked and set(picked) == wanted - {"/nowhere"}
        assert picked == [e.subject for e in store.read("ev") if e.subject in wanted]  # in order
        assert store.count("ev", EntryFilter(subjects=frozenset())) == 0
        names = [
            "/customer",
            "/customer-x",
            "/customer/42",
            "/customer/42/orders/7",
            "/customers/9",
        ]
        assert store.subjects("ev") == sorted(names)
        assert store.subject_count("ev") == 5
        with pytest.raises(UnknownLogError):
            store.subjects("nope")
        with pytest.raises(InvalidArgumentError):
            store.count("ev", EntryFilter(keys=frozenset({1})))  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            store.count("ev", EntryFilter(subjects={"/a", 2}))  # type: ignore[arg-type]
        assert store.count(None, EntryFilter(types=frozenset({"even"}))) == 16
        everything = list(store.read())
        assert [e.position for e in everything] == sorted(e.position for e in everything)
        assert len(everything) == 31
        newest = list(store.read("ev", EntryFilter(types=frozenset({"even"})), reverse=True))
        assert [e.seq for e in newest] == list(range(28, -1, -2))

    def test_reads_stream_in_chunks(self, store: LedgerStore) -> None:
        store.append_batch([NewEntry("big", {"i": i}) for i in range(1234)])
        stream = store.read("big")
        assert next(stream).seq == 0
        store.append(NewEntry("big", {"i": "late"}))
        assert sum(1 for _ in stream) == 1234  # later chunks see the late entry too
        assert [e.seq for e in store.read("big", EntryFilter(seq_min=1200), limit=600)] == list(
            range(1200, 1235)
        )

    # --- Merkle tree ----------------------------------------------------------------------

    def test_merkle_root_and_proofs_for_every_size(self, store: LedgerStore) -> None:
        entries = self.fill(store, n=37)
        hashes = [e.hash for e in entries]  # the leaf data: leaf = SHA-256(0x00 || entry hash)
        leaves = [merkle.leaf_hash(h) for h in hashes]
        for size in range(0, 38):
            head = store.tree_head("main", size)
            assert head.root == merkle.root_from_leaves(hashes[:size])
        assert store.log_info("main").root == merkle.root_from_leaves(hashes)
        for size in range(1, 38):
            root = merkle.root_from_leaves(hashes[:size])
            for index in range(size):
                proof = store.inclusion_proof("main", index, size)
                merkle.verify_inclusion(index, size, leaves[index], proof, root)
            for size1 in range(1, size + 1):
                proof = store.consistency_proof("main", size1, size)
                merkle.verify_consistency(
                    size1, size, merkle.root_from_leaves(hashes[:size1]), root, proof
                )
        with pytest.raises(InvalidArgumentError):
            store.tree_head("main", 38)
        with pytest.raises(InvalidArgumentError):
            store.inclusion_proof("main", 37, 37)
        with pytest.raises(InvalidArgumentError):
            store.consistency_proof("main", 30, 20)

    def test_tree_grows_across_many_batches(self, store: LedgerStore) -> None:
        hashes: list[bytes] = []
        for batch in (1, 2, 3, 5, 8, 13, 21, 34, 1, 1):
            hashes += [e.hash for e in self.fill(store, "t", batch)]
            assert store.tree_head("t").root == merkle.root_from_leaves(hashes)
        proof = store.inclusion_proof("t", 50)
        leaf = merkle.leaf_hash(hashes[50])
        merkle.verify_inclusion(50, len(hashes), leaf, proof, store.tree_head("t").root)

    # --- verification and tampering -------------------------------------------------------

    def test_verify_passes_and_checks_a_trusted_head(self, store: LedgerStore) -> None:
        self.fill(store, n=50)
        head = store.tree_head("main", 30)
        report = store.verify("main", trusted=head)
        assert report.ok and report.checkpoint_checked and report.entries_checked == 50
        wrong = TreeHead("main", 30, bytes(32))
        report = store.verify("main", trusted=wrong)
        assert not report.ok and report.problem is not None
        assert report.problem.kind is ProblemKind.CHECKPOINT_MISMATCH

    def insert_raw(
        self, seq: int, hlc: int, entry_id: bytes, payload: bytes, prev: bytes, digest: bytes
    ) -> None:
        """Forge a JSON entry of log 1 at position 10,000 straight into the table."""
        self.raw(
            "INSERT INTO ls_entries (position, log_id, seq, hlc, id, type, subject, key, flags, "
            "format, payload, prev_hash, hash) VALUES (10000, 1, ?, ?, ?, NULL, NULL, NULL, 0, 1, "
            "?, ?, ?)",
            (seq, hlc, entry_id, payload, prev, digest),
        )

    def _problem(self, log: str = "main", trusted: TreeHead | None = None) -> ledgerstore.Problem:
        store = self.open()
        try:
            report = store.verify(log, trusted=trusted)
        finally:
            store.close()
        assert not report.ok and report.problem is not None, report
        return report.problem

    def tampered(self, n: int = 20) -> list[ledgerstore.Entry]:
        store = self.open()
        try:
            return self.fill(store, n=n)
        finally:
            store.close()

    def test_tamper_update_is_reported_as_modified(self) -> None:
        self.tampered()
        self.raw("UPDATE ls_entries SET payload = ? WHERE seq = 7", (b'{"n":700}',))
        problem = self._problem()
        assert (problem.kind, problem.seq) == (ProblemKind.MODIFIED, 7)

    def test_tamper_metadata_is_reported_as_modified(self) -> None:
        self.tampered()
        self.raw("UPDATE ls_entries SET type = 'forged' WHERE seq = 3")
        problem = self._problem()
        assert (problem.kind, problem.seq) == (ProblemKind.MODIFIED, 3)

    def test_tamper_rewritten_hash_is_caught_by_the_next_link(self) -> None:
        entries = self.tampered()
        forged = recompute_hash(dataclasses.replace(entries[4], payload=b'{"n":-1}'))
        self.raw("UPDATE ls_entries SET payload = ?, hash = ? WHERE seq = 4", (b'{"n":-1}', forged))
        problem = self._problem()
        assert (problem.kind, problem.seq) == (ProblemKind.MODIFIED, 4)

    def test_tamper_delete_is_reported_as_deleted(self) -> None:
        self.tampered()
        self.raw("DELETE FROM ls_entries WHERE seq = 11")
        problem = self._problem()
        assert (problem.kind, problem.seq) == (ProblemKind.DELETED, 11)

    def test_tamper_swapped_entries_are_reported_as_reordered(self) -> None:
        self.tampered()
        self.raw("UPDATE ls_entries SET seq = -1 WHERE seq = 5")
        self.raw("UPDATE ls_entries SET seq = 5 WHERE seq = 6")
        self.raw("UPDATE ls_entries SET seq = 6 WHERE seq = -1")
        problem = self._problem()
        assert (problem.kind, problem.seq) == (ProblemKind.REORDERED, 5)

    def test_tamper_forged_row_in_the_middle_is_reported_as_inserted(self) -> None:
        entries = self.tampered()
        self.raw("UPDATE ls_entries SET seq = -seq - 100 WHERE seq >= 9")
        self.raw("UPDATE ls_entries SET seq = -seq - 99 WHERE seq <= -100")
        prev = entries[8]
        forged = ledgerstore.Entry(
            "main", 9, 10_000, prev.hlc + 1, str(uuid.uuid4()), None, None, None, 0,
            PayloadFormat.JSON, b'{"n":"forged"}', prev.hash, b"",
        )  # fmt: skip
        digest = recompute_hash(forged)
        self.insert_raw(
            9, forged.hlc, uuid.UUID(forged.id).bytes, forged.payload, prev.hash, digest
        )
        problem = self._problem()
        assert (problem.kind, problem.seq) == (ProblemKind.INSERTED, 9)

    def test_tamper_forged_row_at_the_end_is_reported_as_inserted(self) -> None:
        entries = self.tampered()
        last = entries[-1]
        self.insert_raw(20, last.hlc + 1, uuid.uuid4().bytes, b"{}", last.hash, bytes(32))
        problem = self._problem()
        assert (problem.kind, problem.seq) == (ProblemKind.INSERTED, 20)

    def test_tamper_cut_tail_is_reported_as_truncated(self) -> None:
        self.tampered()
        self.raw("DELETE FROM ls_entries WHERE seq >= 17")
        problem = self._problem()
        assert (problem.kind, problem.seq) == (ProblemKind.TRUNCATED, 17)

    def test_tamper_cut_tail_with_rewritten_state_needs_a_checkpoint(self) -> None:
        store = self.open()
        entries = self.fill(store, n=20)
        trusted = store.tree_head("main")
        store.close()
        cut = entries[14]
        tree = merkle.CompactRange()
        for entry in entries[:15]:
            tree.append(merkle.leaf_hash(entry.hash))
        self.raw("DELETE FROM ls_entries WHERE seq >= 15")
        self.raw(
            "UPDATE ls_logs SET size = 15, head = ?, frontier = ? WHERE name = 'main'",
            (cut.hash, tree.to_bytes()),
        )
        store = self.open()
        try:
            assert store.verify("main").ok  # self-consistent: only a trusted head can tell
        finally:
            store.close()
        problem = self._problem(trusted=trusted)
        assert (problem.kind, problem.seq) == (ProblemKind.TRUNCATED, 15)

    def test_tamper_restored_old_copy_is_caught_by_a_checkpoint(self) -> None:
        store = self.open()
        self.fill(store, n=10)
        store.close()
        old = self.snapshot()
        store = self.open()
        self.fill(store, n=10)
        trusted = store.tree_head("main")
        store.close()
        self.restore(old)
        problem = self._problem(trusted=trusted)
        assert problem.kind is ProblemKind.TRUNCATED

    def test_tamper_merkle_node_is_reported(self) -> None:
        self.tampered(n=16)
        self.raw("UPDATE ls_nodes SET hash = ? WHERE level = 2 AND idx = 1", (bytes(32),))
        problem = self._problem()
        assert problem.kind is ProblemKind.TREE_MISMATCH

    # --- concurrency ----------------------------------------------------------------------

    def test_threads_never_fork_a_log(self, store: LedgerStore) -> None:
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                for i in range(50):
                    store.append(NewEntry("shared", {"w": worker, "i": i}))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        entries = list(store.read("shared"))
        assert [e.seq for e in entries] == list(range(400))
        assert len({(e.value()["w"], e.value()["i"]) for e in entries}) == 400
        assert store.verify("shared").ok

    def test_processes_never_fork_a_log(self) -> None:
        self.open().close()  # create the schema before the race
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=_append_worker, args=(self.url, "race", 500, w))
            for w in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=600)
        assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
        store = self.open()
        try:
            entries = list(store.read("race"))
            assert [e.seq for e in entries] == list(range(2000))
            assert len({(e.value()["worker"], e.value()["i"]) for e in entries}) == 2000
            positions = [e.position for e in entries]
            assert positions == sorted(positions) and len(set(positions)) == 2000
            hlcs = [e.hlc for e in entries]
            assert hlcs == sorted(hlcs) and len(set(hlcs)) == 2000
            assert store.verify("race").ok
        finally:
            store.close()

    # --- change feed ----------------------------------------------------------------------

    def test_subscription_replays_then_goes_live_without_gap_or_duplicate(
        self, store: LedgerStore
    ) -> None:
        self.fill(store, "feed", 700)
        store.append(NewEntry("elsewhere", {}))
        received: list[int] = []
        with store.subscribe(["feed"]) as feed:
            writer = threading.Thread(
                target=lambda: [store.append(NewEntry("feed", {"late": i})) for i in range(50)]
            )
            for entry in feed:
                received.append(entry.seq)
                if len(received) == 300:
                    writer.start()  # appends race the replay's tail
                if len(received) == 750:
                    break
            writer.join()
            assert feed.next(timeout=0.05) is None
        assert received == list(range(750))

    def test_subscription_to_all_logs_from_a_position(self, store: LedgerStore) -> None:
        written = store.append_batch([NewEntry(f"log{i % 3}", {"i": i}) for i in range(30)])
        with store.subscribe(after_position=written[9].position) as feed:
            got = [feed.next(timeout=5) for _ in range(20)]
        assert [e.position for e in got if e] == [e.position for e in written[10:]]

    def test_several_subscribers_and_a_slow_one_do_not_stall_appends(
        self, store: LedgerStore
    ) -> None:
        slow = store.subscribe(["s"])  # never read until the end
        fast = [store.subscribe(["s"]) for _ in range(3)]
        results: list[list[int]] = [[] for _ in fast]

        def consume(index: int) -> None:
            for entry in fast[index]:
                results[index].append(entry.value()["i"])
                if len(results[index]) == 200:
                    return

        readers = [threading.Thread(target=consume, args=(i,)) for i in range(3)]
        for reader in readers:
            reader.start()
        for i in range(200):
            store.append(NewEntry("s", {"i": i}))
        for reader in readers:
            reader.join(timeout=30)
        assert results == [list(range(200))] * 3
        assert [slow.next(timeout=5).value()["i"] for _ in range(200)] == list(range(200))  # type: ignore[union-attr]
        for feed in [slow, *fast]:
            feed.close()

    def test_subscription_sees_appends_from_another_process(self, store: LedgerStore) -> None:
        with store.subscribe(["xproc"], poll_interval=0.05) as feed:
            process = multiprocessing.get_context("spawn").Process(
                target=_append_worker, args=(self.url, "xproc", 25, 0)
            )
            process.start()
            got = [feed.next(timeout=60) for _ in range(25)]
            process.join(timeout=60)
        assert [e.value()["i"] for e in got if e] == list(range(25))

    def test_closing_a_subscription_ends_its_iteration(self, store: LedgerStore) -> None:
        feed = store.subscribe(["quiet"])
        seen: list[ledgerstore.Entry] = []
        reader = threading.Thread(target=lambda: seen.extend(feed))
        reader.start()
        time.sleep(0.1)
        feed.close()
        reader.join(timeout=5)
        assert not reader.is_alive() and seen == []

    # --- erasable side store --------------------------------------------------------------

    def test_side_values_are_stored_and_erased(self, store: LedgerStore) -> None:
        store.append(
            NewEntry("p", {"commit": "h1"}),
            side=[SideValue("r1", "/people/1", b"alice"), SideValue("r2", "/people/1/x", b"a2"),
                  SideValue("r3", "/people/10", b"bob"), SideValue("r4", "/people/2", b"carol")],
        )  # fmt: skip
        assert store.side_get(["r1", "r3", "nope"]) == {"r1": b"alice", "r3": b"bob"}
        assert store.side_erase(subject_under="/people/1") == 2
        assert store.side_get(["r1", "r2", "r3"]) == {"r3": b"bob"}
        assert store.side_erase(refs=["r3"]) == 1
        assert store.side_erase(subject="/people/2") == 1
        assert store.side_get(["r1", "r2", "r3", "r4"]) == {}
        assert store.verify("p").ok
        with pytest.raises(InvalidArgumentError):
            store.side_erase()

    def test_erased_bytes_leave_every_database_file(self, store: LedgerStore) -> None:
        secret = b"SECRET-" + uuid.uuid4().hex.encode()
        keep = b"KEEP-" + uuid.uuid4().hex.encode()
        store.append(
            NewEntry("p", {"commit": "c"}),
            side=[SideValue("s1", "/subject/1", secret * 40), SideValue("k1", "/subject/2", keep)],
        )
        store.append_batch([NewEntry("p", {"i": i}) for i in range(50)])
        assert self._files_containing(secret), "the test must be able to see the value first"
        assert store.side_erase(subject="/subject/1") == 1
        assert self._files_containing(secret) == [], self._files_containing(secret)
        assert store.side_get(["k1"]) == {"k1": keep}
        assert store.verify("p").ok

    def _files_containing(self, needle: bytes) -> list[Path]:
        hits = []
        for path in self.database_files():
            try:
                if needle in path.read_bytes():
                    hits.append(path)
            except (FileNotFoundError, PermissionError):
                continue
        return hits
