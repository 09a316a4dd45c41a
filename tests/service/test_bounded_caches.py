"""What the serving process keeps in memory does not grow with the log: after a few thousand
decisions (each with its own data subject), proofs all over the log and a verification, every
cache holds at most its bound and the writer's state holds one entry per tenant and chain.

The bounds are made small here so that the log outgrows them; the assertions are on sizes, not
on wall-clock time or RSS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from decisiontrail import integrity
from decisiontrail.ledger import PreparedDecision, subjects
from decisiontrail.tlog import TILE_WIDTH

from .inprocess import running

TENANT = "acme"
AGENTS = 4
DECISIONS = 3_000
BATCH = 250
TILE_BOUND = 4
KEY_BOUND = 100


def decision(i: int) -> PreparedDecision:
    body: dict[str, Any] = {
        "agent": f"agent-{i % AGENTS}",
        "action": f"step {i}",
        "input": {"message": f"case {i}"},
        "data_subjects": [f"customer-{i}"],  # a new subject each time: keys to remember
    }
    return PreparedDecision(body, ["input"])


async def test_caches_stay_within_their_bounds_as_the_log_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subjects, "KEY_CACHE_SIZE", KEY_BOUND)
    async with running(tmp_path / "data") as service:
        ledger = service.state.ledger
        ledger.tree._tiles.capacity = TILE_BOUND
        for start in range(0, DECISIONS, BATCH):
            await ledger.writer.record(TENANT, [decision(i) for i in range(start, start + BATCH)])
            # proofs read tiles from all over the log, as auditors' requests do
            for index in range(0, start + BATCH, 97):
                size, proof = await ledger.tree.inclusion_proof(TENANT, index)
                assert size == start + BATCH and proof
        answer = await integrity.verify_tenant(
            ledger=ledger, trust=service.state.keyring.trust, tenant=TENANT
        )
        assert answer["ok"] and answer["records_checked"] == DECISIONS

        assert len(ledger.tree._tiles.items) == TILE_BOUND
        assert len(ledger.subjects._keys) == KEY_BOUND
        head = await ledger.heads.head(TENANT)
        assert head.size == DECISIONS
        assert len(head.chains) == AGENTS  # one entry per chain, not per decision
        assert len(head.frontier.partial) <= 2  # 3,000 leaves: two levels of 256-wide tiles
        assert all(len(row) < TILE_WIDTH for row in head.frontier.partial)
        assert ledger.heads.tenants() == [TENANT]
        assert not any(ledger.writer._pending.values())
        assert set(ledger.subjects.epochs._live) <= {TENANT}  # per tenant, not per subject
