"""SapixDB writes in a worker process: the same records and edges as in-process, batches
still all or nothing, and a worker that cannot run (or dies) costs no write."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from decisiontrail import provenance
from decisiontrail.ledger import Ledger, build_ledger, load_pepper
from decisiontrail.ledger import sealing as ledger_module
from decisiontrail.provenance import GRAPH, ProvenanceStore, decision_node
from decisiontrail.signing import Keyring
from decisiontrail.store_workers import GenesisWorker, SapixWorker, WorkerUnavailable
from decisiontrail.verification import verify_records
from genesisdb import Client, PreconditionFailedError
from sapixdb import AsyncSapixClient, SapixError
from tests.service.test_ledger import all_records, decision


def open_ledger(
    tmp_path: Path, worker: SapixWorker | None, committer: GenesisWorker | None = None
) -> Ledger:
    keyring, _ = Keyring.load_or_create(tmp_path / "keys", "dt.test")
    return build_ledger(
        Client({"api_url": genesis_location(tmp_path)}),
        keyring,
        origin="dt.test",
        pepper=load_pepper(tmp_path / "keys"),
        provenance=ProvenanceStore(
            AsyncSapixClient(f"sqlite:///{tmp_path}/sapix.db", agent=GRAPH), worker
        ),
        genesis_worker=committer,
    )


def genesis_location(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/genesis.db"


@pytest.fixture(autouse=True)
def every_batch_in_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "WORKER_MIN_DECISIONS", 1)


def sapix_location(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/sapix.db"


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[SapixWorker]:
    started = SapixWorker(sapix_location(tmp_path), None, GRAPH)
    yield started
    started.close()


async def close(ledger: Ledger) -> None:
    for worker in ledger.workers():
        worker.close()
    await ledger.provenance.client.aclose()
    await ledger.genesis.close()


async def linked(ledger: Ledger, tenant: str, decision_id: str) -> set[str]:
    edges = await ledger.provenance.client.graph.edges(decision_node(tenant, decision_id))
    return {edge.edge_type for edge in edges}


async def live_records(ledger: Ledger) -> list[str]:
    return [r.record_id for r in await ledger.provenance.recent(before_hlc=None, limit=1000)]


async def test_the_worker_process_writes_what_in_process_writes_would(
    tmp_path: Path, worker: SapixWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "STORE_CHUNK", 2)  # five decisions: three chunks
    ledger = open_ledger(tmp_path, worker)
    try:
        await worker.start()
        assert await worker._call(os.getpid) != os.getpid()  # really another process
        receipts = await ledger.writer.record(
            "acme", [decision("a", i, session_id="s-1", data_subjects=["carol"]) for i in range(5)]
        )
        stored = [await ledger.provenance.get(r.sapix_id or "") for r in receipts]
        assert [s.payload["decision_id"] if s else None for s in stored] == [
            r.record["id"] for r in receipts
        ]  # in order, each receipt naming its own SapixDB record
        for receipt in receipts:
            assert await linked(ledger, "acme", receipt.record["id"]) == {
                "agent", "session", "subject"
            }  # fmt: skip
        assert len(await all_records(ledger, "acme")) == 5
    finally:
        await close(ledger)


class RefusingAfterFirstWrite(SapixWorker):
    """A worker whose record writes after the first are refused by the store, while
    ``refusing``."""

    calls = 0
    refusing = True

    async def write_records(self, collection: str, docs: Sequence[dict[str, Any]]) -> list[str]:
        self.calls += 1
        if self.calls > 1 and self.refusing:
            raise SapixError("refused", 503, "BUSY")
        return await super().write_records(collection, docs)


async def test_a_refused_chunk_takes_the_whole_batch_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "STORE_CHUNK", 2)
    worker = RefusingAfterFirstWrite(sapix_location(tmp_path), None, GRAPH)
    ledger = open_ledger(tmp_path, worker)
    try:
        with pytest.raises(SapixError, match="refused"):
            await ledger.writer.record("acme", [decision("a", i) for i in range(5)])
        written = await live_records(ledger)
        assert len(written) == 2  # the first chunk went in …
        assert set(written) <= await ledger.provenance.deleted_ids()  # … and was tombstoned
        assert await all_records(ledger, "acme") == []  # and nothing was committed
        worker.refusing = False
        again = await ledger.writer.record("acme", [decision("a", i) for i in range(5)])
        assert [r.record["sequence"] for r in again] == [0, 1, 2, 3, 4]
    finally:
        await close(ledger)


async def test_a_killed_worker_costs_no_write_and_is_replaced(
    tmp_path: Path, worker: SapixWorker
) -> None:
    ledger = open_ledger(tmp_path, worker)
    try:
        await ledger.writer.record("acme", [decision("a", 0)])
        first_pid = await worker._call(os.getpid)
        os.kill(first_pid, signal.SIGKILL)
        # The next call finds the child dead: its writes are done in-process instead.
        done = await ledger.writer.record("acme", [decision("a", 1, session_id="s")])
        assert await linked(ledger, "acme", done[0].record["id"]) == {"agent", "session"}
        assert len(await live_records(ledger)) == 2
        later = await ledger.writer.record("acme", [decision("a", 2)])
        assert await worker._call(os.getpid) not in (first_pid, os.getpid())  # a new child
        assert [r.record["sequence"] for r in later] == [2]
        assert len(await all_records(ledger, "acme")) == 3
    finally:
        await close(ledger)


class Unstartable(SapixWorker):
    """A worker whose process cannot be started (as when ``spawn`` refuses)."""

    def _executor(self) -> ProcessPoolExecutor:
        raise RuntimeError("cannot start a process here")


async def test_without_a_worker_process_writes_stay_in_process(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path, Unstartable(sapix_location(tmp_path), None, GRAPH))
    try:
        receipts = await ledger.writer.record(
            "acme", [decision("a", i, session_id="s") for i in range(3)]
        )
        assert ledger.provenance.worker is not None and ledger.provenance.worker.disabled
        assert len(await live_records(ledger)) == 3
        assert await linked(ledger, "acme", receipts[0].record["id"]) == {"agent", "session"}
    finally:
        await close(ledger)


@pytest.mark.parametrize("in_worker", [True, False], ids=["worker", "in-process"])
async def test_edges_beyond_one_call_go_in_several(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_worker: bool
) -> None:
    monkeypatch.setattr(provenance, "MAX_EDGE_BATCH", 3)  # 4 decisions × 3 edges: 4 calls
    monkeypatch.setattr(provenance, "EDGES_PER_WORKER_CALL", 2)
    worker = SapixWorker(sapix_location(tmp_path), None, GRAPH) if in_worker else None
    ledger = open_ledger(tmp_path, worker)
    try:
        receipts = await ledger.writer.record(
            "acme", [decision("a", i, session_id="s", run_id=f"r{i}") for i in range(4)]
        )
        for receipt in receipts:
            assert await linked(ledger, "acme", receipt.record["id"]) == {
                "agent", "session", "run"
            }  # fmt: skip
    finally:
        await close(ledger)


async def test_commits_in_the_genesis_worker_raise_what_in_process_commits_would(
    tmp_path: Path,
) -> None:
    committer = GenesisWorker(genesis_location(tmp_path), 1_000_000)
    try:
        event = {"source": "t", "subject": "/x", "type": "t.happened", "data": {"n": 1}}
        await committer.commit_events([event], [])
        assert await committer._call(os.getpid) != os.getpid()
        guard = [{"type": "isSubjectNew", "payload": {"subject": "/x"}}]
        with pytest.raises(PreconditionFailedError) as failed:
            await committer.commit_events([event], guard)
        assert failed.value.details["index"] == 0  # the same error, details and all
        async with Client({"api_url": genesis_location(tmp_path)}) as reader:
            assert len(await reader.stream_events("/x")) == 1
    finally:
        committer.close()


class DiesAround(GenesisWorker):
    """A Genesis DB worker that dies during a commit, after committing or before."""

    after = True

    async def commit_events(self, events: Any, preconditions: Any = None) -> None:
        if self.after:
            await super().commit_events(events, preconditions)
        raise WorkerUnavailable("the Genesis DB worker process died")


@pytest.mark.parametrize("after", [True, False], ids=["after-commit", "before-commit"])
async def test_a_commit_whose_worker_died_is_neither_lost_nor_doubled(
    tmp_path: Path, after: bool
) -> None:
    committer = DiesAround(genesis_location(tmp_path), 1_000_000)
    committer.after = after
    ledger = open_ledger(tmp_path, None, committer)
    try:
        receipts = await ledger.writer.record("acme", [decision("a", i) for i in range(3)])
        records = await all_records(ledger, "acme")
        assert [r["id"] for r in records] == [r.record["id"] for r in receipts]
        assert len(await live_records(ledger)) == 3
    finally:
        await close(ledger)


async def test_a_killed_genesis_worker_costs_no_commit_and_is_replaced(tmp_path: Path) -> None:
    committer = GenesisWorker(genesis_location(tmp_path), 1_000_000)
    ledger = open_ledger(tmp_path, None, committer)
    try:
        await ledger.writer.record("acme", [decision("a", 0)])
        os.kill(await committer._call(os.getpid), signal.SIGKILL)
        await ledger.writer.record("acme", [decision("a", 1)])
        await ledger.writer.record("acme", [decision("a", 2)])
        records = await all_records(ledger, "acme")
        assert [r["sequence"] for r in records] == [0, 1, 2]
    finally:
        await close(ledger)


async def test_pipelined_replicas_with_workers_commit_everything_once(tmp_path: Path) -> None:
    """Two replicas, each with both workers and four concurrent writers: groups sealed ahead
    on a head another replica then moved are put back and sealed again."""
    replicas = [
        open_ledger(
            tmp_path,
            SapixWorker(sapix_location(tmp_path), None, GRAPH),
            GenesisWorker(genesis_location(tmp_path), 1_000_000),
        )
        for _ in range(2)
    ]

    async def write(replica: Ledger, writer: int) -> None:
        for i in range(6):
            await replica.writer.record(
                "t", [decision(f"bot{writer % 2}", i, w=writer) for _ in range(5)]
            )

    try:
        await asyncio.gather(*(write(r, w) for r in replicas for w in range(4)))
        records = await all_records(replicas[0], "t")
        assert len(records) == 2 * 4 * 6 * 5
        assert verify_records(records, tenant="t", trust=replicas[0].keyring.trust).ok
        live = set(await live_records(replicas[0])) - await replicas[0].provenance.deleted_ids()
        assert len(live) == len(records)  # SapixDB holds exactly the committed decisions
    finally:
        for replica in replicas:
            await close(replica)


class Counting(SapixWorker):
    """A SapixDB worker that counts the calls it takes."""

    calls = 0

    async def _call(self, function: Any, *arguments: Any) -> Any:
        self.calls += 1
        return await super()._call(function, *arguments)


async def test_small_batches_skip_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "WORKER_MIN_DECISIONS", 10)
    worker = Counting(sapix_location(tmp_path), None, GRAPH)
    ledger = open_ledger(tmp_path, worker)
    try:
        small = await ledger.writer.record(
            "acme", [decision("a", i, session_id="s") for i in range(9)]
        )
        assert worker.calls == 0  # a hop to another process would only add latency
        large = await ledger.writer.record(
            "acme", [decision("a", i, session_id="s") for i in range(10)]
        )
        assert worker.calls >= 2  # its records and its edges
        for receipt in small + large:
            assert await linked(ledger, "acme", receipt.record["id"]) == {"agent", "session"}
        assert len(await all_records(ledger, "acme")) == 19
    finally:
        await close(ledger)


PARENT = """
import asyncio, os, sys, time
from decisiontrail.store_workers import GenesisWorker, SapixWorker

async def main() -> None:
    workers = [SapixWorker(sys.argv[1], None, "g"), GenesisWorker(sys.argv[2], 1_000_000)]
    pids = [await w._call(os.getpid) for w in workers]
    print(*pids, flush=True)
    time.sleep(600)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_workers_exit_when_the_service_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script), sapix_location(tmp_path), genesis_location(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
    finally:
        parent.kill()  # SIGKILL: no shutdown, no word to the workers
        parent.wait()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)  # they noticed and left


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


class DiesOnce(GenesisWorker):
    """A Genesis DB worker whose first commit's answer is lost: the child dies right after
    committing (``landed``) or before it could."""

    landed = True
    lost = 0

    async def commit_events(self, events: Any, preconditions: Any = None) -> None:
        if not self.lost and not self.landed:
            self.lost += 1
            raise WorkerUnavailable("the Genesis DB worker process died")
        await super().commit_events(events, preconditions)
        if not self.lost:
            self.lost += 1
            raise WorkerUnavailable("the Genesis DB worker process died")


@pytest.mark.parametrize("landed", [True, False], ids=["after-commit", "before-commit"])
async def test_a_group_whose_worker_died_is_recorded_once(tmp_path: Path, landed: bool) -> None:
    committer = DiesOnce(genesis_location(tmp_path), 1_000_000)
    committer.landed = landed
    ledger = open_ledger(tmp_path, None, committer)
    try:
        calls = [ledger.writer.record("acme", [decision(f"bot{i}", i)]) for i in range(3)]
        results = await asyncio.gather(*calls)
        assert committer.lost == 1
        records = await all_records(ledger, "acme")
        assert sorted(r["id"] for r in records) == sorted(r[0].record["id"] for r in results)
    finally:
        await close(ledger)
