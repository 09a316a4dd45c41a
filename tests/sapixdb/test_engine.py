"""The engine's own guarantees: the hash algorithm, tamper detection, no forks under races."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest

import ledgerstore
from sapixdb.chain import content_hash
from sapixdb.engine import SapixEngine
from sapixdb.exceptions import SapixError

WORKER = Path(__file__).with_name("race_worker.py")


@pytest.fixture
def engine(tmp_path: Path) -> SapixEngine:
    return SapixEngine(ledgerstore.open_store(f"sqlite:///{tmp_path}/e.db"))


def test_content_hash_is_blake3_over_header_and_payload(engine: SapixEngine) -> None:
    first = engine.write("a", {"x": 1})
    second = engine.write("a", {"x": 1})
    record = engine.get("a", second["record_id"])
    payload = msgpack.packb({"x": 1}, use_bin_type=True)
    expected = content_hash(
        parent=bytes.fromhex(first["content_hash"]),
        hlc=record["timestamp_hlc"],
        flags=0,
        schema_version=1,
        collection=None,
        payload=payload,
    )
    assert expected == second["content_hash"] != first["content_hash"]
    assert record["parent_hash"] == first["content_hash"]


def test_verify_names_a_tampered_record(tmp_path: Path) -> None:
    engine = SapixEngine(ledgerstore.open_store(f"sqlite:///{tmp_path}/t.db"))
    for n in range(3):
        engine.write("a", {"amount": n})
    assert engine.verify("a")["ok"] is True
    engine.close()
    # Rewrite the middle record's payload behind the store's back.
    with sqlite3.connect(tmp_path / "t.db") as raw:
        rows = raw.execute("SELECT position, payload FROM ls_entries ORDER BY position").fetchall()
        envelope = msgpack.unpackb(rows[1][1], raw=False)
        envelope[5] = msgpack.packb({"amount": 1000})
        raw.execute(
            "UPDATE ls_entries SET payload = ? WHERE position = ?",
            (msgpack.packb(envelope, use_bin_type=True), rows[1][0]),
        )
    reopened = SapixEngine(ledgerstore.open_store(f"sqlite:///{tmp_path}/t.db"))
    report = reopened.verify("a")
    assert report["ok"] is False and "record 1" in report["problem"]


def test_threads_never_fork_a_strand(engine: SapixEngine) -> None:
    other = SapixEngine(engine.store)  # a second engine: no shared in-process lock

    def write(target: SapixEngine, tag: str) -> None:
        for n in range(40):
            target.write("shared", {"tag": tag, "n": n})

    threads = [
        threading.Thread(target=write, args=(target, f"{i}"))
        for i, target in enumerate([engine, engine, other, other])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = engine.verify("shared")
    assert report["ok"] is True and report["records_checked"] == 160


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_processes_never_fork_a_strand(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path}/p.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, "shared", "30", f"p{i}"], stderr=subprocess.PIPE
        )
        for i in range(3)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr.decode()
    engine = SapixEngine(ledgerstore.open_store(url))
    try:
        report = engine.verify("shared")
        assert report["ok"] is True and report["records_checked"] == 90
        records = engine.strand("shared", limit=1000)["records"]
        for before, after in itertools.pairwise(records):
            assert after["parent_hash"] == before["content_hash"]
            assert after["timestamp_hlc"] > before["timestamp_hlc"]
        for tag in ("p0", "p1", "p2"):  # each writer's own order survives
            mine = [r["payload"]["n"] for r in records if r["payload"]["tag"] == tag]
            assert mine == list(range(30))
    finally:
        engine.close()


def test_record_hlc_never_exceeds_the_entry_hlc(engine: SapixEngine) -> None:
    engine.write_batch("a", [{"n": n} for n in range(50)])
    for entry in engine.store.read("sapix/agents/a"):
        assert msgpack.unpackb(entry.payload, raw=False)[1] <= entry.hlc


def test_payload_too_large_is_a_413(tmp_path: Path) -> None:
    store = ledgerstore.open_store(f"sqlite:///{tmp_path}/s.db", max_payload_bytes=1024)
    engine = SapixEngine(store)
    with pytest.raises(SapixError) as caught:
        engine.write("a", {"blob": "x" * 2000})
    assert caught.value.status == 413
    assert engine.query("a", {"type": "latest"}) == {"records": []}  # no partial write


def test_group_commit_isolates_a_bad_unit(tmp_path: Path) -> None:
    store = ledgerstore.open_store(f"sqlite:///{tmp_path}/g.db", max_payload_bytes=2048)
    engine = SapixEngine(store)
    errors: list[int] = []
    barrier = threading.Barrier(6)

    def write(n: int) -> None:
        barrier.wait()
        payload = {"big": "x" * 5000} if n == 0 else {"n": n}
        for _ in range(20):
            try:
                engine.write("g", payload)
            except SapixError as exc:
                errors.append(exc.status or 0)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [413] * 20  # only the oversized writer failed
    report = engine.verify("g")
    assert report["ok"] is True and report["records_checked"] == 100
    records = engine.strand("g", limit=1000)["records"]
    for n in range(1, 6):  # every writer's records, each once
        assert sum(r["payload"] == {"n": n} for r in records) == 20


# --- batched edges ----------------------------------------------------------------------------


def test_add_edges_validates_every_edge_before_writing(engine: SapixEngine) -> None:
    a = engine.write("n", {"node": "a"})["record_id"]
    good = {"src": a, "dst": "b", "edge_type": "t"}
    for edges, message in [
        ("not a list", "edges must be a list"),
        ({"src": a}, "edges must be a list"),
        ([good, "edge"], "edges[1]: an edge is an object"),
        ([good, {"dst": "b"}], "edges[1]: src must be"),
        ([good, good, {**good, "weight": True}], "edges[2]: weight must be a number"),
        ([{**good, "weight": float("inf")}], "edges[0]: weight must be finite"),
        ([{**good, "weight": 10**400}], "edges[0]: weight must be finite"),
        ([{**good, "edge_type": "x" * 129}], "edges[0]: edge_type must be"),
    ]:
        with pytest.raises(SapixError) as caught:
            engine.add_edges("g", edges)
        assert (caught.value.status, caught.value.code) == (400, "BAD_REQUEST")
        assert caught.value.message.startswith(message), caught.value.message
    with pytest.raises(SapixError) as caught:
        engine.add_edge("g", a, "b", "t", 10**400)  # was an OverflowError
    assert caught.value.status == 400
    with pytest.raises(SapixError) as caught:
        engine.add_edges("../g", [good])
    assert caught.value.code == "INVALID_NAME"
    with pytest.raises(SapixError) as caught:
        engine.add_edges("g", [good] * 10_001)
    assert (caught.value.status, caught.value.code) == (400, "TOO_MANY_EDGES")
    assert engine.edges("g", a) == {"edges": []}
    assert engine.add_edges("g", []) == {"edges": []}
    added = engine.add_edges("g", [good, {"src": a, "dst": "c"}])["edges"]  # defaults as add_edge
    assert [(e["dst"], e["edge_type"], e["weight"]) for e in added] == [
        ("b", "t", 1.0),
        ("c", "related", 1.0),
    ]
    assert all(e["created"] is True for e in added)


def test_add_edges_join_the_group_commit_of_single_adds(
    engine: SapixEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[list[str | None]] = []
    real = engine.store.append_batch

    def slow_append_batch(entries: Any, **kwargs: Any) -> Any:
        commits.append([e.type for e in entries])
        if len(commits) == 1:
            time.sleep(0.2)  # while the first commit runs, everyone else queues
        return real(entries, **kwargs)

    monkeypatch.setattr(engine.store, "append_batch", slow_append_batch)
    barrier = threading.Barrier(9)

    def single(n: int) -> None:
        barrier.wait()
        engine.add_edge("g", f"s{n}", "hub", "single")

    def batch(n: int) -> None:
        barrier.wait()
        time.sleep(0.05)
        engine.add_edges(
            "g", [{"src": "hub", "dst": f"d{i}", "edge_type": f"b{n}"} for i in range(50)]
        )

    threads = [threading.Thread(target=single, args=(n,)) for n in range(6)]
    threads += [threading.Thread(target=batch, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(c) for c in commits) == 6 + 150
    assert len(commits) < 9  # units arriving during a commit shared the next one
    for commit in commits:  # a batch is never split across commits
        for n in range(3):
            assert commit.count(f"b{n}") in (0, 50)
    assert len(engine.edges("g", "hub")["edges"]) == 150
    assert len(engine.traverse("g", "hub", direction="inbound")["nodes"]) == 7


def test_a_failing_edge_batch_fails_alone_and_writes_nothing(
    engine: SapixEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = engine.store.append_batch
    started = threading.Event()

    sizes: list[int] = []

    def picky_append_batch(entries: Any, **kwargs: Any) -> Any:
        sizes.append(len(entries))
        if not started.is_set():
            started.set()
            time.sleep(0.2)  # the units below queue up and are committed together
        if any(e.key == "poison" for e in entries):
            raise ledgerstore.InvalidEntryError("rejected by the store")
        return real(entries, **kwargs)

    monkeypatch.setattr(engine.store, "append_batch", picky_append_batch)
    errors: list[BaseException] = []

    def run(function: Any, *args: Any) -> None:
        try:
            function(*args)
        except Exception as exc:
            errors.append(exc)

    first = threading.Thread(target=run, args=(engine.add_edge, "g", "x", "first", "t"))
    first.start()
    started.wait()
    poisoned = [{"src": "p", "dst": "ok", "edge_type": "t"}, {"src": "p", "dst": "poison"}]
    threads = [
        threading.Thread(target=run, args=(engine.add_edges, "g", poisoned)),
        threading.Thread(target=run, args=(engine.add_edges, "g", [{"src": "q", "dst": "r"}])),
        threading.Thread(target=run, args=(engine.add_edge, "g", "s", "t", "t")),
    ]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join()
    assert [type(e) for e in errors] == [ledgerstore.InvalidEntryError]
    assert sizes[:2] == [1, 4]  # the three queued units failed together, then went one by one
    assert engine.edges("g", "p") == {"edges": []}  # not even the good edge of that batch
    for src in ("x", "q", "s"):
        assert len(engine.edges("g", src)["edges"]) == 1
