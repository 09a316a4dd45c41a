from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from decisiontrail.ledger import Ledger, PreparedDecision, build_ledger, commit, load_pepper
from decisiontrail.ledger.events import subject_path
from decisiontrail.ledger.failures import CommitOutcomeUnknownError, IdempotencyKeyInFlightError
from decisiontrail.provenance import GRAPH, ProvenanceStore
from decisiontrail.records import leaf_data
from decisiontrail.signing import Keyring
from decisiontrail.verification import open_checkpoint, verify_records
from genesisdb import Client, NetworkError
from genesisdb.events import to_dict
from ledgerstore import merkle
from sapixdb import AsyncSapixClient, SapixError


def decision(agent: str, i: int, **extra: Any) -> PreparedDecision:
    body = {"agent": agent, "action": f"step {i}", "input": {"customer": "Alice"}, **extra}
    return PreparedDecision(body, ["input"])


def open_ledger(tmp_path: Path, genesis: Client, *, origin: str = "dt.test") -> Ledger:
    """A ledger on the given Genesis DB client and an embedded SapixDB beside it."""
    keyring, _ = Keyring.load_or_create(tmp_path / "keys", "dt.test")
    sapix = AsyncSapixClient(f"sqlite:///{tmp_path}/sapix.db", agent=GRAPH)
    return build_ledger(
        genesis,
        keyring,
        origin=origin,
        pepper=load_pepper(tmp_path / "keys"),
        provenance=ProvenanceStore(sapix),
    )


async def close_ledger(ledger: Ledger) -> None:
    await ledger.provenance.client.aclose()
    await ledger.genesis.close()


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    opened = open_ledger(tmp_path, Client({"api_url": f"sqlite:///{tmp_path}/genesis.db"}))
    yield opened
    await close_ledger(opened)


async def all_records(ledger: Ledger, tenant: str) -> list[dict[str, Any]]:
    return [receipt.record async for receipt in ledger.reads.records(tenant)]


async def test_batches_chain_per_agent_and_verify(ledger: Ledger) -> None:
    first = await ledger.writer.record(
        "acme", [decision("a", 0), decision("b", 0), decision("a", 1)]
    )
    second = await ledger.writer.record("acme", [decision("a", 2)])
    assert [(r.record["chain"], r.record["sequence"]) for r in first + second] == [
        ("a", 0), ("b", 0), ("a", 1), ("a", 2)
    ]  # fmt: skip
    assert [r.log_index for r in first + second] == [0, 1, 2, 3]
    records = await all_records(ledger, "acme")
    assert [r["id"] for r in records] == [r.record["id"] for r in first + second]
    report = verify_records(records, tenant="acme", trust=ledger.keyring.trust)
    assert report.ok, report.problem
    assert "Alice" not in repr(records)  # personal values are only committed


async def test_a_retried_idempotency_key_returns_the_first_result(ledger: Ledger) -> None:
    first = await ledger.writer.record("acme", [decision("a", 0)], idempotency_key="req-1")
    again = await ledger.writer.record("acme", [decision("a", 0)], idempotency_key="req-1")
    assert [r.record["id"] for r in again] == [r.record["id"] for r in first]
    assert len(await all_records(ledger, "acme")) == 1


async def test_two_replicas_never_fork_a_chain(tmp_path: Path) -> None:
    keyring, _ = Keyring.load_or_create(tmp_path / "keys", "dt.test")
    pepper = load_pepper(tmp_path / "keys")
    clients = [Client({"api_url": f"sqlite:///{tmp_path}/shared.db"}) for _ in range(2)]
    replicas = [open_ledger(tmp_path, c) for c in clients]

    async def write(replica: Ledger, tag: int) -> None:
        for i in range(15):
            await replica.writer.record("t", [decision("bot", i, tag=tag)])

    await asyncio.gather(write(replicas[0], 0), write(replicas[1], 1))
    records = await all_records(replicas[0], "t")
    assert [r["sequence"] for r in records] == list(range(30))
    assert verify_records(records, tenant="t", trust=keyring.trust).ok
    # Both stores hold exactly the committed decisions: lost claims were tombstoned.
    current = await replicas[0].provenance.recent(before_hlc=None, limit=1000)
    discarded = await replicas[0].provenance.deleted_ids()
    live = {r.payload["decision_id"] for r in current if r.record_id not in discarded}
    assert live == {r["id"] for r in records}
    assert pepper
    for replica in replicas:
        await close_ledger(replica)


async def test_proofs_and_checkpoints_verify(ledger: Ledger) -> None:
    for _ in range(6):
        await ledger.writer.record("acme", [decision(f"agent{i % 3}", i) for i in range(100)])
    records = await all_records(ledger, "acme")
    checkpoint = await ledger.tree.checkpoint("acme")
    opened = open_checkpoint(checkpoint.note, ledger.keyring.trust, "dt.test/acme")
    assert opened.size == 600
    leaves = [merkle.leaf_hash(leaf_data(record)) for record in records]
    for index in (0, 255, 256, 599):
        size, proof = await ledger.tree.inclusion_proof("acme", index)
        merkle.verify_inclusion(index, size, leaves[index], proof, opened.root)
    size, proof = await ledger.tree.consistency_proof("acme", 300)
    _, old_root = await ledger.tree.tree_root("acme", 300)
    merkle.verify_consistency(300, size, old_root, opened.root, proof)
    report = verify_records(records, tenant="acme", trust=ledger.keyring.trust, trusted=opened)
    assert report.ok and report.checkpoints_checked == 1


async def test_the_head_survives_a_restart(tmp_path: Path) -> None:
    keyring, _ = Keyring.load_or_create(tmp_path / "keys", "dt.test")
    pepper = load_pepper(tmp_path / "keys")
    first = open_ledger(tmp_path, Client({"api_url": f"sqlite:///{tmp_path}/g.db"}), origin="o")
    await first.writer.record("t", [decision("bot", i) for i in range(300)])
    await close_ledger(first)
    restarted = open_ledger(tmp_path, Client({"api_url": f"sqlite:///{tmp_path}/g.db"}))
    more = await restarted.writer.record("t", [decision("bot", 300)])
    assert (more[0].log_index, more[0].record["sequence"]) == (300, 300)
    records = [r.record async for r in restarted.reads.records("t")]
    assert verify_records(records, tenant="t", trust=keyring.trust).ok
    assert pepper
    await close_ledger(restarted)


async def test_every_decision_is_in_sapixdb_with_its_provenance_edges(ledger: Ledger) -> None:
    receipts = await ledger.writer.record(
        "acme",
        [
            decision("a", 0, run_id="r1", session_id="s1", data_subjects=["alice"],
                     model={"provider": "openai", "name": "gpt-4o"}),
            decision("a", 1, run_id="r2", parent_run_id="r1", session_id="s1"),
        ],
    )  # fmt: skip
    for receipt in receipts:
        assert receipt.sapix_id is not None
        stored = await ledger.provenance.get(receipt.sapix_id)
        assert stored is not None
        assert stored.payload["record"] == receipt.record
        assert await ledger.reads.confirm("acme", stored.payload, receipt.sapix_id) == receipt
        assert await ledger.reads.confirm("other", stored.payload, receipt.sapix_id) is None
    parent, child = receipts
    graph, parent_node = ledger.provenance.client.graph, f"decision:acme:{parent.record['id']}"
    edges = {(e.dst, e.edge_type) for e in await graph.edges(parent_node)}
    assert ("run:acme:r1", "run") in edges and ("session:acme:s1", "session") in edges
    assert ("model:acme:openai/gpt-4o", "model") in edges and ("agent:acme:a", "agent") in edges
    subject_edges = [dst for dst, kind in edges if kind == "subject"]
    (alice_key,) = await ledger.subjects.subject_keys("acme", "alice")
    assert subject_edges == [f"subject:acme:{alice_key}"]
    assert "alice" not in repr(edges) and ledger.subjects.pseudonym("alice") not in repr(edges)
    members = await ledger.provenance.members("acme", "run:acme:r2", "run")
    assert members == [child.record["id"]]
    ancestors = await ledger.provenance.tree("run:acme:r2", "outbound")
    assert "run:acme:r1" in {n.record_id for n in ancestors.nodes}
    # Erasure cuts the graph's link to the subject and forgets the subject's key.
    await ledger.subjects.erase_subject("acme", "alice")
    assert await ledger.subjects.subject_keys("acme", "alice") == []
    assert await ledger.subjects.subject_decisions("acme", "alice") == []
    edges = {(e.dst, e.edge_type) for e in await graph.edges(parent_node)}
    assert not [dst for dst, kind in edges if kind == "subject"]


async def test_a_failed_sapixdb_write_leaves_nothing_behind(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ledger.writer.record("acme", [decision("a", 0)])

    async def failing_write_batch(*args: Any, **kwargs: Any) -> Any:
        raise SapixError("disk full", 503, "UNAVAILABLE")

    calls: list[tuple[str, str, bool]] = []
    ledger.outbox.on_store_call = lambda store, operation, _, ok: calls.append(
        (store, operation, ok)
    )
    monkeypatch.setattr(ledger.provenance.collection, "write_batch", failing_write_batch)
    with pytest.raises(SapixError):
        await ledger.writer.record("acme", [decision("a", i) for i in range(1, 4)])
    monkeypatch.undo()
    assert calls == [("sapixdb", "ingest", False)]  # counted as a store error, nothing more
    assert len(await all_records(ledger, "acme")) == 1  # Genesis DB got nothing
    assert len(await ledger.provenance.recent(before_hlc=None, limit=100)) == 1
    more = await ledger.writer.record("acme", [decision("a", 1)])
    assert (more[0].log_index, more[0].record["sequence"]) == (1, 1)


async def test_edges_lost_after_the_commit_are_written_again(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_add_edges(*args: Any, **kwargs: Any) -> Any:
        raise SapixError("disk full", 503, "UNAVAILABLE")

    monkeypatch.setattr(ledger.provenance.client.graph, "add_edges", failing_add_edges)
    receipts = await ledger.writer.record(
        "acme", [decision("a", i, data_subjects=["bob"], run_id=f"r{i}") for i in range(3)]
    )  # the decisions are in both stores: acknowledged; only derived edges are missing
    monkeypatch.undo()
    assert len(await all_records(ledger, "acme")) == 3
    for receipt in receipts:
        assert not await ledger.provenance.is_linked("acme", receipt.record["id"])
    assert await ledger.repair.run(grace_ms=0) == 0  # nothing to tombstone, edges re-written
    for receipt in receipts:
        assert await ledger.provenance.is_linked("acme", receipt.record["id"])
    node = f"decision:acme:{receipts[0].record['id']}"
    kinds = {e.edge_type: e.dst for e in await ledger.provenance.client.graph.edges(node)}
    assert kinds["run"] == "run:acme:r0"
    assert (
        kinds["subject"] == f"subject:acme:{(await ledger.subjects.subject_keys('acme', 'bob'))[0]}"
    )


async def test_an_unknown_commit_outcome_is_repaired(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lost_connection(*args: Any, **kwargs: Any) -> None:
        raise NetworkError("connection reset")

    monkeypatch.setattr(ledger.genesis, "commit_events", lost_connection)
    monkeypatch.setattr(commit, "RESOLVE_PAUSE_SECONDS", 0.0)
    # The store stays unreachable: the outcome cannot be learned, so it is reported as such.
    with pytest.raises(CommitOutcomeUnknownError):
        await ledger.writer.record("acme", [decision("a", 0), decision("b", 0)])
    monkeypatch.undo()
    orphans = await ledger.provenance.recent(before_hlc=None, limit=10)
    assert len(orphans) == 2  # in SapixDB, but no read confirms them
    for orphan in orphans:
        assert await ledger.reads.confirm("acme", orphan.payload, orphan.record_id) is None
    assert await ledger.repair.run(grace_ms=60_000) == 0  # too young: maybe a write in flight
    assert await ledger.repair.run(grace_ms=0) == 2
    assert await ledger.provenance.deleted_ids() == {o.record_id for o in orphans}
    assert await ledger.repair.run(grace_ms=0) == 0


async def test_concurrent_requests_share_commits_and_fail_alone(ledger: Ledger) -> None:
    huge = decision("a", 99, blob="x" * 5_000_000)  # larger than Genesis DB takes an event
    calls = [ledger.writer.record("acme", [decision(f"agent{i % 3}", i)]) for i in range(30)]
    calls.append(ledger.writer.record("acme", [huge]))
    calls += [
        ledger.writer.record("acme", [decision("k", 0)], idempotency_key="same") for _ in range(3)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    # While the first request with a key is in flight, the others with it are refused.
    in_flight = [r for r in results[31:] if isinstance(r, IdempotencyKeyInFlightError)]
    assert len(in_flight) == 2
    results[31:] = [await ledger.writer.record("acme", [decision("k", 0)], idempotency_key="same")
                    for _ in range(3)]  # fmt: skip
    assert isinstance(results[30], Exception)  # the oversize request fails, alone
    singles = [r for r in results[:30] if not isinstance(r, BaseException)]
    assert len(singles) == 30 and all(len(r) == 1 for r in singles)
    keyed = [r for r in results[31:] if not isinstance(r, BaseException)]
    assert len(keyed) == 3 and len({r[0].record["id"] for r in keyed}) == 1  # one decision
    records = await all_records(ledger, "acme")
    assert len(records) == 31
    assert {r[0].record["id"] for r in singles} | {keyed[0][0].record["id"]} == {
        r["id"] for r in records
    }
    assert verify_records(records, tenant="acme", trust=ledger.keyring.trust).ok
    batches = await ledger.genesis.stream_events("/tenants/acme/log")
    assert len(batches) < 20  # the failure was isolated by halving, not one by one
    calls = [ledger.writer.record("acme", [decision("b", i)]) for i in range(30)]
    await asyncio.gather(*calls)
    more = await ledger.genesis.stream_events("/tenants/acme/log")
    assert len(more) - len(batches) < 10  # requests that waited together share a commit


async def test_after_erasure_nothing_ties_the_subject_to_a_decision(ledger: Ledger) -> None:
    await ledger.subjects.set_legal_hold("acme", "carol", placed=True)  # a key before any decision
    assert await ledger.subjects.legal_hold("acme", "carol")
    await ledger.subjects.set_legal_hold("acme", "carol", placed=False)
    first = await ledger.writer.record(
        "acme", [decision("a", i, data_subjects=["carol"]) for i in range(3)]
    )
    (key,) = await ledger.subjects.subject_keys("acme", "carol")
    assert sorted(await ledger.subjects.subject_decisions("acme", "carol")) == sorted(
        r.record["id"] for r in first
    )
    decision_ids, erased = await ledger.subjects.erase_subject("acme", "carol")
    assert len(decision_ids) == 3 and erased == 3  # the 3 decisions' values
    links = await ledger.genesis.stream_events(subject_path("acme", key))
    # The links stay (plain: a tenant and a decision id under a key that names no one now).
    assert {
        to_dict(e)["data"]["decision_id"] for e in links if "decisions" in to_dict(e)["subject"]
    } == set(decision_ids)
    # What stays is named by the key, and the key itself is gone: no lookup by the person
    # (even one with the pepper) reaches the old decisions.
    assert await ledger.subjects.subject_keys("acme", "carol") == []
    assert await ledger.subjects.subject_decisions("acme", "carol") == []
    assert not await ledger.subjects.legal_hold("acme", "carol")
    # No event is named by the pepper's HMAC of the person (issue 14; see test_reidentify).
    pseudonym = ledger.subjects.pseudonym("carol")
    assert await ledger.genesis.stream_events(f"/tenants/acme/subject-keys/{pseudonym}") == []
    # A later decision about the same person gets a new key, unrelated to the old one.
    later = await ledger.writer.record("acme", [decision("a", 9, data_subjects=["carol"])])
    (new_key,) = await ledger.subjects.subject_keys("acme", "carol")
    assert new_key != key
    assert await ledger.subjects.subject_decisions("acme", "carol") == [later[0].record["id"]]


async def test_many_subjects_are_looked_up_in_one_query(ledger: Ledger) -> None:
    people = [f"person-{i}" for i in range(6)]
    await ledger.writer.record(
        "acme", [decision("a", i, data_subjects=[p]) for i, p in enumerate(people)]
    )
    await ledger.subjects.erase_subject("acme", people[0])
    ledger.subjects._keys.clear()  # as on another replica: nothing cached
    found = await ledger.subjects.look_up("acme", people)
    assert people[0] not in found  # an erased key is no key
    for person in people[1:]:
        assert found[person] == await ledger.subjects.subject_keys("acme", person) != []
    ledger.subjects._keys.clear()
    (again,) = await ledger.writer.record("acme", [decision("a", 9, data_subjects=people[1:])])
    for person in people[1:]:  # the looked-up keys were reused: still one key each
        assert len(await ledger.subjects.subject_keys("acme", person)) == 1
        assert again.record["id"] in await ledger.subjects.subject_decisions("acme", person)
