from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from decisiontrail.ledger import Ledger, PreparedDecision, load_pepper
from decisiontrail.records import leaf_data
from decisiontrail.signing import Keyring
from decisiontrail.verification import open_checkpoint, verify_records
from genesisdb import Client
from ledgerstore import merkle


def decision(agent: str, i: int, **extra: Any) -> PreparedDecision:
    body = {"agent": agent, "action": f"step {i}", "input": {"customer": "Alice"}, **extra}
    return PreparedDecision(body, ["input"])


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    client = Client({"api_url": f"sqlite:///{tmp_path}/genesis.db"})
    keyring, _ = Keyring.load_or_create(tmp_path / "keys", "dt.test")
    yield Ledger(client, keyring, origin="dt.test", pepper=load_pepper(tmp_path / "keys"))
    await client.close()


async def all_records(ledger: Ledger, tenant: str) -> list[dict[str, Any]]:
    return [receipt.record async for receipt in ledger.records(tenant)]


async def test_batches_chain_per_agent_and_verify(ledger: Ledger) -> None:
    first = await ledger.record("acme", [decision("a", 0), decision("b", 0), decision("a", 1)])
    second = await ledger.record("acme", [decision("a", 2)])
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
    first = await ledger.record("acme", [decision("a", 0)], idempotency_key="req-1")
    again = await ledger.record("acme", [decision("a", 0)], idempotency_key="req-1")
    assert [r.record["id"] for r in again] == [r.record["id"] for r in first]
    assert len(await all_records(ledger, "acme")) == 1


async def test_two_replicas_never_fork_a_chain(tmp_path: Path) -> None:
    keyring, _ = Keyring.load_or_create(tmp_path / "keys", "dt.test")
    pepper = load_pepper(tmp_path / "keys")
    clients = [Client({"api_url": f"sqlite:///{tmp_path}/shared.db"}) for _ in range(2)]
    replicas = [Ledger(c, keyring, origin="dt.test", pepper=pepper) for c in clients]

    async def write(replica: Ledger, tag: int) -> None:
        for i in range(15):
            await replica.record("t", [decision("bot", i, tag=tag)])

    await asyncio.gather(write(replicas[0], 0), write(replicas[1], 1))
    records = await all_records(replicas[0], "t")
    assert [r["sequence"] for r in records] == list(range(30))
    assert verify_records(records, tenant="t", trust=keyring.trust).ok
    for client in clients:
        await client.close()


async def test_proofs_and_checkpoints_verify(ledger: Ledger) -> None:
    for _ in range(6):
        await ledger.record("acme", [decision(f"agent{i % 3}", i) for i in range(100)])
    records = await all_records(ledger, "acme")
    checkpoint = await ledger.checkpoint("acme")
    opened = open_checkpoint(checkpoint.note, ledger.keyring.trust, "dt.test/acme")
    assert opened.size == 600
    leaves = [merkle.leaf_hash(leaf_data(record)) for record in records]
    for index in (0, 255, 256, 599):
        size, proof = await ledger.inclusion_proof("acme", index)
        merkle.verify_inclusion(index, size, leaves[index], proof, opened.root)
    size, proof = await ledger.consistency_proof("acme", 300)
    _, old_root = await ledger.tree_root("acme", 300)
    merkle.verify_consistency(300, size, old_root, opened.root, proof)
    report = verify_records(records, tenant="acme", trust=ledger.keyring.trust, trusted=opened)
    assert report.ok and report.checkpoints_checked == 1


async def test_the_head_survives_a_restart(tmp_path: Path) -> None:
    keyring, _ = Keyring.load_or_create(tmp_path / "keys", "dt.test")
    pepper = load_pepper(tmp_path / "keys")
    async with Client({"api_url": f"sqlite:///{tmp_path}/g.db"}) as client:
        await Ledger(client, keyring, origin="o", pepper=pepper).record(
            "t", [decision("bot", i) for i in range(300)]
        )
    async with Client({"api_url": f"sqlite:///{tmp_path}/g.db"}) as client:
        restarted = Ledger(client, keyring, origin="o", pepper=pepper)
        more = await restarted.record("t", [decision("bot", 300)])
        assert (more[0].log_index, more[0].record["sequence"]) == (300, 300)
        records = [r.record async for r in restarted.records("t")]
        assert verify_records(records, tenant="t", trust=keyring.trust).ok
