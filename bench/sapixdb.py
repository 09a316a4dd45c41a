"""SapixDB SDK benchmark: each number beside the raw ledgerstore baseline from the same run.

    .venv/bin/python bench/sapixdb.py [--quick]

On a fresh SQLite file per measurement (and a real ``python -m sapixdb.server`` process for
HTTP), it measures:

- writes/s: single ``collection.write`` vs ``write_batch`` (batches of 100), embedded and
  over HTTP (sync client, and the async client; over HTTP a batch is one request to the
  server's batch endpoint, an extension of the wire protocol), beside raw
  ``store.append`` / ``store.append_batch`` of the same payloads;
- reads/s: ``collection.get`` by id, embedded and HTTP, beside ``store.get``;
- live delivery latency (write → event, median and p99) with 1 and 50 subscribers, embedded
  and over SSE, beside a ledgerstore ``subscribe`` feed.

Every number printed was measured in this run. It is a script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This script shares its name with the package it measures: import the package, not itself.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import ledgerstore  # noqa: E402
from ledgerstore import NewEntry, PayloadFormat  # noqa: E402
from sapixdb import AsyncSapixClient, SapixClient  # noqa: E402
from tests.sapixdb.server_process import ServerProcess, start_server  # noqa: E402

PAYLOAD = {"agent": "bench", "action": "approve", "note": "x" * 900, "n": 0}
BATCH = 100


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f}/s"


def timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def row(label: str, *cells: str) -> None:
    print(f"  {label:<34}" + "".join(f"{cell:>18}" for cell in cells))


# --- ledgerstore baseline ------------------------------------------------------------------


def baseline_writes(directory: Path, count: int) -> tuple[float, float, list[str]]:
    store = ledgerstore.open_store(f"sqlite:///{directory}/base1.db")
    entries = [NewEntry("bench", {**PAYLOAD, "n": n}, PayloadFormat.MSGPACK) for n in range(count)]
    ids: list[str] = []
    single = timed(lambda: ids.extend(store.append(e).id for e in entries))
    store.close()
    store = ledgerstore.open_store(f"sqlite:///{directory}/base2.db")
    batched = timed(
        lambda: [store.append_batch(entries[i : i + BATCH]) for i in range(0, count, BATCH)]
    )
    store.close()
    return single, batched, ids


def baseline_reads(directory: Path, ids: list[str]) -> float:
    store = ledgerstore.open_store(f"sqlite:///{directory}/base1.db")
    seconds = timed(lambda: [store.get(i) for i in ids])
    store.close()
    return seconds


def baseline_latency(directory: Path, samples: int, subscribers: int) -> list[float]:
    store = ledgerstore.open_store(f"sqlite:///{directory}/lat{subscribers}.db")
    store.append(NewEntry("feed", {"t": 0}, PayloadFormat.MSGPACK))
    latencies: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(subscribers + 1)

    def listen() -> None:
        with store.subscribe(["feed"], after_position=store.last_position()) as feed:
            ready.wait()
            for _ in range(samples):
                entry = feed.next(10)
                if entry is None:
                    return
                sent = entry.value()["t"]
                with lock:
                    latencies.append(time.perf_counter() - sent)

    threads = [threading.Thread(target=listen) for _ in range(subscribers)]
    for thread in threads:
        thread.start()
    ready.wait()
    for _ in range(samples):
        store.append(NewEntry("feed", {"t": time.perf_counter()}, PayloadFormat.MSGPACK))
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    store.close()
    return latencies


# --- SapixDB SDK ---------------------------------------------------------------------------


def sdk_writes(url: str, count: int) -> tuple[float, float, list[str]]:
    with SapixClient(url=url) as db:
        col = db.collection("bench_single")
        ids: list[str] = []
        single = timed(lambda: ids.extend(col.write({**PAYLOAD, "n": n}).id for n in range(count)))
        records = [{**PAYLOAD, "n": n} for n in range(count)]
        batch_col = db.collection("bench_batch")
        batched = timed(
            lambda: [batch_col.write_batch(records[i : i + BATCH]) for i in range(0, count, BATCH)]
        )
    return single, batched, ids


def async_batch_writes(url: str, count: int) -> float:
    async def run() -> float:
        async with AsyncSapixClient(url=url) as db:
            col = db.collection("bench_async_batch")
            records = [{**PAYLOAD, "n": n} for n in range(count)]
            start = time.perf_counter()
            for i in range(0, count, BATCH):
                await col.write_batch(records[i : i + BATCH])
            return time.perf_counter() - start

    return asyncio.run(run())


def sdk_reads(url: str, ids: list[str]) -> float:
    with SapixClient(url=url) as db:
        col = db.collection("bench_single")
        return timed(lambda: [col.get(i) for i in ids])


def sdk_latency(url: str, samples: int, subscribers: int) -> list[float]:
    agent = f"bench_live_{subscribers}"

    async def run() -> list[float]:
        latencies: list[float] = []
        async with AsyncSapixClient(url=url) as db:
            first = await db.collection(agent).write({"t": 0.0})
            started = 0

            async def listen() -> None:
                nonlocal started
                stream = db.subscribe_agent(agent, since=first.timestamp_hlc)
                started += 1
                seen = 0
                async for event in stream:
                    latencies.append(time.perf_counter() - event.payload["t"])
                    seen += 1
                    if seen == samples:
                        break
                await stream.aclose()

            tasks = [asyncio.create_task(listen()) for _ in range(subscribers)]
            while started < subscribers:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)  # let every subscription connect
            for _ in range(samples):
                await db.collection(agent).write({"t": time.perf_counter()})
                await asyncio.sleep(0.005)
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
        return latencies

    return asyncio.run(run())


def latency_cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:.1f}/{p99 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = parser.parse_args()
    count = 300 if args.quick else 3000
    samples = 30 if args.quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"SapixDB SDK benchmark: {count} records of ~1 KB, batches of {BATCH}, SQLite")
        base_single, base_batch, base_ids = baseline_writes(directory, count)
        base_reads = baseline_reads(directory, base_ids)
        emb_single, emb_batch, emb_ids = sdk_writes(f"sqlite:///{directory}/emb.db", count)
        emb_reads = sdk_reads(f"sqlite:///{directory}/emb.db", emb_ids)
        server: ServerProcess = start_server(directory)
        try:
            http_single, http_batch, http_ids = sdk_writes(server.url, count)
            http_async_batch = async_batch_writes(server.url, count)
            http_reads = sdk_reads(server.url, http_ids)
            print()
            row("", "embedded", "HTTP", "ledgerstore")
            row(
                "writes, one at a time",
                rate(count, emb_single),
                rate(count, http_single),
                rate(count, base_single),
            )
            row(
                "writes, write_batch of 100",
                rate(count, emb_batch),
                rate(count, http_batch),
                rate(count, base_batch),
            )
            row(
                "writes, async write_batch",
                "",
                rate(count, http_async_batch),
                rate(count, base_batch),
            )
            row(
                "reads by id",
                rate(count, emb_reads),
                rate(count, http_reads),
                rate(count, base_reads),
            )
            for subscribers in (1, 50):
                base = baseline_latency(directory, samples, subscribers)
                emb = sdk_latency(
                    f"sqlite:///{directory}/live{subscribers}.db", samples, subscribers
                )
                sse = sdk_latency(server.url, samples, subscribers)
                row(
                    f"write→event p50/p99, {subscribers} subscriber(s)",
                    latency_cell(emb),
                    latency_cell(sse),
                    latency_cell(base),
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
