"""ledgerstore benchmark: appends, proofs and verification, each beside its baseline.

    python3 tasks.py bench ledgerstore [--quick] [--proof-size N] [--no-postgres]

For SQLite and PostgreSQL (a throwaway cluster is started when the binaries are installed):

- appends/s one at a time and in batches of 100 and 1,000, beside plain INSERTs of the same
  rows into an identical table with the same driver and durability settings (same columns,
  same indexes), and beside the eventsourcing library's application recorder appending the
  same number of events;
- inclusion and consistency proof time (median, p99) at ``--proof-size`` entries;
- full verification rate (entries/s) over that log.

Every number printed was measured in this run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
# This script shares its name with the package it measures: import the package, not itself.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import ledgerstore  # noqa: E402
from ledgerstore import LedgerStore, NewEntry, merkle  # noqa: E402
from ledgerstore.postgres import MIGRATIONS as PG_MIGRATIONS  # noqa: E402
from ledgerstore.sqlite import MIGRATIONS as SQLITE_MIGRATIONS  # noqa: E402
from tests.pgcluster import Cluster, ClusterUnavailable, start_cluster  # noqa: E402

PAYLOAD_BYTES = 1024


def decision(i: int) -> dict[str, object]:
    """A ~1 KB JSON payload shaped like an agent decision."""
    body: dict[str, object] = {
        "agent": "support-bot",
        "action": "refund",
        "kind": "llm_call",
        "i": i,
        "model": {"provider": "openai", "name": "gpt-4o", "version": "2024-08-06"},
        "input": "x" * 600,
        "output": "approved",
        "confidence": 0.93,
    }
    pad = PAYLOAD_BYTES - len(orjson.dumps(body))
    body["pad"] = "p" * max(pad - 10, 0)
    return body


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


@dataclass
class Backend:
    name: str
    open_store: Callable[[], LedgerStore]
    baseline: Callable[[], BaselineTable]
    eventsourcing: Callable[[], EventsourcingRecorder]


# --- baselines --------------------------------------------------------------------------------


class BaselineTable:
    """Plain INSERTs of the rows ledgerstore writes, into a table with the same schema."""

    def __init__(self, connect: Callable[[], object], placeholder: str, ddl: tuple[str, ...]):
        self.conn = connect()
        self.mark = placeholder
        self.position = 0
        for statement in ddl:
            self._execute(statement)
        self._commit()

    def _execute(self, statement: str, params: tuple[object, ...] = ()) -> None:
        self.conn.execute(statement.replace("?", self.mark), params)  # type: ignore[attr-defined]

    def _commit(self) -> None:
        self.conn.commit()  # type: ignore[attr-defined]

    def rows(self, count: int) -> list[tuple[object, ...]]:
        rows = []
        for i in range(count):
            self.position += 1
            payload = orjson.dumps(decision(i), option=orjson.OPT_SORT_KEYS)
            rows.append(
                (self.position, 1, self.position - 1, self.position, uuid.uuid4().bytes, None,
                 None, None, 0, 1, payload, os.urandom(32), os.urandom(32))
            )  # fmt: skip
        return rows

    INSERT = (
        "INSERT INTO ls_entries (position, log_id, seq, hlc, id, type, subject, key, flags, "
        "format, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )

    def insert(self, rows: list[tuple[object, ...]]) -> None:
        """One transaction for the rows."""
        cur = self.conn.cursor()  # type: ignore[attr-defined]
        cur.executemany(self.INSERT.replace("?", self.mark), rows)
        self._commit()

    def close(self) -> None:
        self.conn.close()  # type: ignore[attr-defined]


class EventsourcingRecorder:
    """The eventsourcing library's application recorder appending the same number of events."""

    def __init__(self, recorder: object, datastore: object) -> None:
        from eventsourcing.persistence import StoredEvent

        self.recorder = recorder
        self.datastore = datastore
        self.stored_event = StoredEvent
        self.originator = uuid.uuid4()
        self.version = 0
        recorder.create_table()  # type: ignore[attr-defined]

    def events(self, count: int) -> list[object]:
        events = []
        for i in range(count):
            self.version += 1
            state = orjson.dumps(decision(i), option=orjson.OPT_SORT_KEYS)
            events.append(self.stored_event(self.originator, self.version, "bench:Decided", state))
        return events

    def insert(self, events: list[object]) -> None:
        self.recorder.insert_events(events)  # type: ignore[attr-defined]

    def close(self) -> None:
        close = getattr(self.datastore, "close", None)
        if close is not None:
            close()


# --- measurements -----------------------------------------------------------------------------


def measure_appends(
    make: Callable[[int], list[object]],
    insert: Callable[[list[object]], None],
    total: int,
    batch: int,
) -> float:
    batches = [make(batch) for _ in range(max(1, total // batch))]
    start = time.perf_counter()
    for rows in batches:
        insert(rows)
    return rate(len(batches) * batch, time.perf_counter() - start)


def ledgerstore_appender(
    store: LedgerStore, log: str
) -> tuple[Callable[[int], list[object]], Callable[[list[object]], None]]:
    counter = iter(range(10**12))

    def make(count: int) -> list[object]:
        return [NewEntry(log, decision(next(counter))) for _ in range(count)]

    def insert(entries: list[object]) -> None:
        store.append_batch(entries)  # type: ignore[arg-type]

    return make, insert


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build_big_log(store: LedgerStore, size: int) -> None:
    existing = store.logs()
    have = next((info.size for info in existing if info.name == "big"), 0)
    print(f"  building a log of {size:,} entries …", flush=True)
    start = time.perf_counter()
    while have < size:
        step = min(1000, size - have)
        store.append_batch([NewEntry("big", {"i": have + k}) for k in range(step)])
        have += step
        if have % 100_000 == 0:
            print(f"    {have:,}", flush=True)
    print(f"  built in {time.perf_counter() - start:.1f} s", flush=True)


def measure_proofs(store: LedgerStore, size: int, samples: int) -> dict[str, list[float]]:
    rng = random.Random(7)
    root = store.tree_head("big").root
    times: dict[str, list[float]] = {"inclusion": [], "consistency": []}
    for _ in range(samples):
        index = rng.randrange(size)
        start = time.perf_counter()
        proof = store.inclusion_proof("big", index, size)
        times["inclusion"].append(time.perf_counter() - start)
        entry = next(store.read("big", ledgerstore.EntryFilter(seq_min=index), limit=1))
        merkle.verify_inclusion(index, size, merkle.leaf_hash(entry.hash), proof, root)
    for _ in range(samples):
        size1 = rng.randrange(1, size)
        start = time.perf_counter()
        store.consistency_proof("big", size1, size)
        times["consistency"].append(time.perf_counter() - start)
    return times


# --- backends ---------------------------------------------------------------------------------


@contextmanager
def sqlite_backend(workdir: Path) -> Iterator[Backend]:
    def open_store() -> LedgerStore:
        return ledgerstore.open_store(workdir / "ledger.db")

    def baseline() -> BaselineTable:
        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(workdir / f"plain-{uuid.uuid4().hex[:6]}.db")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA cache_size=-32000")
            return conn

        return BaselineTable(connect, "?", SQLITE_MIGRATIONS[0])

    def eventsourcing() -> EventsourcingRecorder:
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        datastore = SQLiteDatastore(str(workdir / f"es-{uuid.uuid4().hex[:6]}.db"))
        return EventsourcingRecorder(SQLiteApplicationRecorder(datastore), datastore)

    yield Backend("SQLite", open_store, baseline, eventsourcing)


@contextmanager
def postgres_backend(cluster: Cluster) -> Iterator[Backend]:
    database = cluster.create_database()

    def open_store() -> LedgerStore:
        return ledgerstore.open_store(cluster.url(database))

    def baseline() -> BaselineTable:
        name = cluster.create_database()
        return BaselineTable(lambda: psycopg.connect(cluster.url(name)), "%s", PG_MIGRATIONS[0])

    def eventsourcing() -> EventsourcingRecorder:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        name = cluster.create_database()
        datastore = PostgresDatastore(name, "127.0.0.1", cluster.port, "postgres", "")
        return EventsourcingRecorder(PostgresApplicationRecorder(datastore), datastore)

    yield Backend("PostgreSQL", open_store, baseline, eventsourcing)


# --- report -----------------------------------------------------------------------------------


def run_backend(backend: Backend, args: argparse.Namespace) -> list[str]:
    lines = []
    print(f"\n== {backend.name}", flush=True)
    store = backend.open_store()
    plain = backend.baseline()
    events = backend.eventsourcing()
    try:
        for batch, total in ((1, args.single), (100, args.batched), (1000, args.batched)):
            # Interleave three rounds so drift on a shared machine hits all three alike.
            ours, base, es = [], [], []
            for _ in range(3):
                make, insert = ledgerstore_appender(store, "bench")
                ours.append(measure_appends(make, insert, total // 3, batch))
                base.append(measure_appends(plain.rows, plain.insert, total // 3, batch))  # type: ignore[arg-type]
                es.append(measure_appends(events.events, events.insert, total // 3, batch))
            o, b, e = statistics.median(ours), statistics.median(base), statistics.median(es)
            line = (
                f"{backend.name:10} append batch={batch:<5} ledgerstore {o:>9,.0f}/s | "
                f"plain INSERT {b:>9,.0f}/s ({o / b:5.0%} of it) | "
                f"eventsourcing {e:>9,.0f}/s ({o / e:4.2f}x)"
            )
            print(line, flush=True)
            lines.append(line)
        build_big_log(store, args.proof_size)
        times = measure_proofs(store, args.proof_size, args.samples)
        for kind, values in times.items():
            median_ms = statistics.median(values) * 1e3
            p99_ms = percentile(values, 0.99) * 1e3
            line = (
                f"{backend.name:10} {kind} proof at {args.proof_size:,}: median "
                f"{median_ms:.3f} ms, p99 {p99_ms:.3f} ms ({len(values)} proofs)"
            )
            print(line, flush=True)
            lines.append(line)
        start = time.perf_counter()
        report = store.verify("big")
        seconds = time.perf_counter() - start
        assert report.ok, report
        line = (
            f"{backend.name:10} verify {report.entries_checked:,} entries: "
            f"{rate(report.entries_checked, seconds):,.0f} entries/s ({seconds:.1f} s)"
        )
        print(line, flush=True)
        lines.append(line)
    finally:
        store.close()
        plain.close()
        events.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--proof-size", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=1_500, help="entries appended one by one")
    parser.add_argument("--batched", type=int, default=30_000, help="entries appended in batches")
    parser.add_argument("--samples", type=int, default=1_000, help="proofs timed per kind")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.proof_size, args.single, args.batched, args.samples = 20_000, 300, 6_000, 200
    print(f"ledgerstore benchmark on {os.cpu_count()} cores, ~{PAYLOAD_BYTES} B payloads")
    lines: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-ledgerstore-"))
    cluster: Cluster | None = None
    try:
        with sqlite_backend(workdir) as backend:
            lines += run_backend(backend, args)
        if not args.no_postgres:
            try:
                cluster = start_cluster()
            except ClusterUnavailable as exc:
                print(f"\nPostgreSQL skipped: {exc}")
            else:
                with postgres_backend(cluster) as backend:
                    lines += run_backend(backend, args)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\nSummary")
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    main()
