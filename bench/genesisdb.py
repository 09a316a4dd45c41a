"""Genesis DB SDK benchmarks (embedded SQLite): commit, stream, observe, and GDBQL beside SQL.

    python bench/genesisdb.py                # 1,000,000 events for the GDBQL part
    python bench/genesisdb.py --events 200000
    python bench/genesisdb.py --quick        # a small run (20,000 events) to try it out

Every GDBQL query is timed beside a hand-written SQL query on the same SQLite file, opened
with ``sqlite3`` directly, in the same run. A script, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genesisdb.engine import Engine

TYPES = [f"io.bench.type-{n}" for n in range(10)]
TENANTS = 100


def event(n: int) -> dict[str, Any]:
    return {
        "source": "io.bench",
        "subject": f"/tenant/{n % TENANTS}/order/{n}",
        "type": TYPES[n % len(TYPES)],
        "data": {"amount": n % 1000, "currency": "EUR", "note": "x" * 40},
    }


def progress(done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    print(f"\r  loaded {done:,}/{total:,} events ({rate:,.0f}/s)", end="", file=sys.stderr)
    if done == total:
        print(file=sys.stderr)


def bench_commits(engine_class: type[Engine], directory: Path, quick: bool) -> None:
    print("commit throughput (one engine, synchronous=FULL):")
    for batch, commits in (
        (1, 200 if quick else 1000),
        (100, 20 if quick else 100),
        (1000, 5 if quick else 30),
    ):
        engine = engine_class.open(f"sqlite:///{directory}/commit-{batch}.db")
        counter = itertools.count()
        started = time.perf_counter()
        for _ in range(commits):
            engine.commit([event(next(counter)) for _ in range(batch)])
        elapsed = time.perf_counter() - started
        engine.close()
        total = batch * commits
        rates = f"{total / elapsed:>10,.0f} events/s  ({commits / elapsed:,.0f} commits/s)"
        print(f"  batch {batch:>5}: {rates}")


def load(engine: Engine, total: int) -> None:
    started = time.perf_counter()
    for start in range(0, total, 1000):
        engine.commit([event(n) for n in range(start, min(total, start + 1000))])
        progress(min(total, start + 1000), total, started)


def bench_stream(engine: Engine, total: int) -> None:
    count = min(total, 200_000)
    started = time.perf_counter()
    streamed = sum(1 for _ in itertools.islice(engine.stream("/"), count))
    elapsed = time.perf_counter() - started
    print(f"stream throughput: {streamed / elapsed:,.0f} events/s ({streamed:,} events from /)")
    started = time.perf_counter()
    large = sum(1 for _ in itertools.islice(engine.stream("/tenant"), count))
    elapsed = time.perf_counter() - started
    print(f"stream a subtree holding every event (/tenant): {large / elapsed:,.0f} events/s")
    started = time.perf_counter()
    subtree = sum(1 for _ in engine.stream("/tenant/7"))
    elapsed = time.perf_counter() - started
    print(f"stream a subtree:  {subtree:,} events of /tenant/7 in {elapsed * 1000:,.0f} ms")


def bench_observe(engine: Engine, samples: int) -> None:
    observation = engine.observe("/latency")
    received: list[float] = []
    done = threading.Event()

    def follow() -> None:
        while len(received) < samples:
            item = observation.next(1.0)
            if item is not None:
                received.append(time.perf_counter())
        done.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    sent: list[float] = []
    for n in range(samples):
        sent.append(time.perf_counter())
        engine.commit([{"source": "b", "subject": "/latency", "type": "ping", "data": {"n": n}}])
        while len(received) <= n and not done.is_set():
            time.sleep(0.0002)
    done.wait(10)
    observation.close()
    latencies = sorted((r - s) * 1000 for s, r in zip(sent, received, strict=False))
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(
        f"observe latency (commit start → event in observer, {len(latencies)} samples): "
        f"p50 {statistics.median(latencies):.2f} ms, p95 {p95:.2f} ms"
    )


def best_of(runs: int, action: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench_queries(engine: Engine, database: Path, log: str) -> None:
    sql = sqlite3.connect(database)
    log_id = sql.execute("SELECT id FROM ls_logs WHERE name = ?", (log,)).fetchone()[0]
    comparisons = [
        (
            "COUNT() filtered by type",
            f"STREAM e FROM events WHERE e.type == '{TYPES[3]}' MAP COUNT()",
            "SELECT count(*) FROM ls_entries WHERE log_id = ? AND type = ?",
            (log_id, TYPES[3]),
        ),
        (
            "GROUP BY e.type",
            "STREAM e FROM events GROUP BY e.type MAP {type: e.type, n: COUNT()}",
            "SELECT type, count(*) FROM ls_entries WHERE log_id = ? GROUP BY type",
            (log_id,),
        ),
        (
            "SUM over a subject subtree",
            "STREAM e FROM events WHERE e.subject UNDER '/tenant/7' MAP SUM(e.data.amount)",
            "SELECT sum(json_extract(CAST(payload AS TEXT), '$.data.amount')) FROM ls_entries "
            "WHERE log_id = ? AND (subject = ? OR (subject >= ? AND subject < ?))",
            (log_id, "/tenant/7", "/tenant/7/", "/tenant/70"),
        ),
    ]
    print("GDBQL (engine) beside hand-written SQL (sqlite3 on the same file), best of 3:")
    for name, query, statement, params in comparisons:
        gdbql_time, rows = best_of(3, lambda q=query: list(engine.query(q)))
        sql_time, sql_rows = best_of(3, lambda s=statement, p=params: sql.execute(s, p).fetchall())
        summary = rows if len(rows) <= 1 else f"{len(rows)} rows"
        print(
            f"  {name:<28} GDBQL {gdbql_time * 1000:>9,.1f} ms  SQL {sql_time * 1000:>9,.1f} ms  "
            f"→ {summary} (SQL: {sql_rows if len(sql_rows) <= 1 else f'{len(sql_rows)} rows'})"
        )
    sql.close()


def _import_engine() -> tuple[type[Engine], str]:
    """The SDK's engine. This script is itself named ``genesisdb.py``: when it runs as a
    script its folder is first on ``sys.path`` and would shadow the package, so drop it."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    sys.modules.pop("genesisdb", None)
    from genesisdb.engine import EVENTS_LOG, Engine

    return Engine, EVENTS_LOG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events for the GDBQL part")
    parser.add_argument("--quick", action="store_true", help="a small run (20,000 events)")
    parser.add_argument("--dir", type=Path, help="where to put the databases (default: a temp dir)")
    args = parser.parse_args(argv)
    total = 20_000 if args.quick else args.events
    engine_class, events_log = _import_engine()
    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        directory = Path(name)
        bench_commits(engine_class, directory, args.quick)
        database = directory / "events.db"
        engine = engine_class.open(f"sqlite:///{database}")
        print(f"loading {total:,} events in batches of 1,000 …")
        load(engine, total)
        bench_stream(engine, total)
        bench_observe(engine, 50 if args.quick else 200)
        bench_queries(engine, database, events_log)
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
