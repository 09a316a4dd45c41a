"""The store's own bookkeeping, held against the log the verifier just read.

Besides the decisions, Genesis DB holds records that each imply how long the log or a chain
is: batch events (where each batch starts and how many it holds), chain heads (each chain's
next sequence and last hash), stored checkpoints (a tree size: the verifier checks those
itself), and the engine's own hash chain over every event. Someone who deletes the newest
decisions (with their index rows and checkpoints) leaves a log that verifies on its own;
these records still say it was longer.
Every one of them must agree, or the verifier names the disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from decisiontrail.ledger.events import BATCH_TYPE, tenant_path
from decisiontrail.ledger.tree import Heads
from genesisdb import Client
from genesisdb.events import to_dict


@dataclass(frozen=True)
class Disagreement:
    """One bookkeeping record that does not match the log as read."""

    reason: str  # truncated, inserted, bookkeeping
    detail: str


class Bookkeeping:
    def __init__(self, genesis: Client, heads: Heads) -> None:
        self.genesis = genesis
        self.heads = heads

    async def disagreements(
        self, tenant: str, *, size: int, chains: dict[str, tuple[int, str]]
    ) -> list[Disagreement]:
        """What disagrees with a log of ``size`` records whose chains end at ``chains``
        (agent -> (next sequence, last hash))."""
        found: list[Disagreement] = []
        expected_start = 0
        for batch in await self.genesis.stream_events(f"{tenant_path(tenant)}/log"):
            data = to_dict(batch)
            if data["type"] != BATCH_TYPE or not isinstance(data["data"], dict):
                continue
            start, count = int(data["data"]["start"]), int(data["data"]["count"])
            if start != expected_start:
                found.append(
                    Disagreement(
                        "bookkeeping",
                        f"a batch starts at {start} where the previous one ended at "
                        f"{expected_start}",
                    )
                )
            expected_start = start + count
        if expected_start != size:
            reason = "truncated" if expected_start > size else "inserted"
            found.append(
                Disagreement(
                    reason,
                    f"the batch events say the log holds {expected_start} records but it "
                    f"has {size}",
                )
            )
        stored_heads = await self.heads.chain_heads(tenant)
        for chain in sorted(set(stored_heads) | set(chains)):
            stored, read = stored_heads.get(chain), chains.get(chain)
            if stored != read:
                length = "no records" if read is None else f"{read[0]} records"
                said = "no head" if stored is None else f"a head after {stored[0]} records"
                reason = (
                    "truncated"
                    if read is None or (stored and stored[0] > read[0])
                    else ("bookkeeping")
                )
                found.append(
                    Disagreement(reason, f"chain {chain!r} has {length} but the store holds {said}")
                )
        audit = await self.genesis.audit()
        if not audit.get("valid", False):
            found.append(
                Disagreement(
                    "bookkeeping",
                    f"the store's own hash chain is broken at event {audit.get('firstInvalid')}",
                )
            )
        return found
