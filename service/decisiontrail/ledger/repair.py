"""Keeping the SapixDB outbox true to Genesis DB: tombstoning records whose commit never
happened, writing missing graph edges again, and comparing the two stores."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from decisiontrail.ledger.events import Receipt
from decisiontrail.ledger.reads import Reads
from decisiontrail.ledger.subjects import Subjects
from decisiontrail.provenance import ProvenanceStore
from genesisdb import Client

COMPARE_AT_ONCE = 64  # SapixDB reads in flight while comparing the stores


@dataclass
class StoreComparison:
    """What :meth:`Repair.compare_stores` found; the first mismatch names its decision."""

    checked: int = 0
    mismatches: int = 0
    first_decision_id: str | None = None
    first_reason: str | None = None

    def note(self, decision_id: str, reason: str) -> None:
        self.mismatches += 1
        if self.first_decision_id is None:
            self.first_decision_id, self.first_reason = decision_id, reason

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.mismatches == 0,
            "decisions_compared": self.checked,
            "mismatches": self.mismatches,
            "first_mismatch": None
            if self.first_decision_id is None
            else {"record_id": self.first_decision_id, "reason": self.first_reason},
        }


class Repair:
    def __init__(
        self, genesis: Client, reads: Reads, subjects: Subjects, provenance: ProvenanceStore
    ) -> None:
        self.genesis = genesis
        self.reads = reads
        self.subjects = subjects
        self.provenance = provenance

    async def _relink(self, tenant: str, receipt: Receipt) -> None:
        """Write a committed decision's graph edges again if they are missing."""
        decision_id = receipt.record["id"]
        if await self.provenance.is_linked(tenant, decision_id):
            return
        values = await self.reads.personal_values(tenant, decision_id) or []
        keys: list[str] = []
        for value in values:  # an erased subject has no keys left: no edge to it
            if value.path.startswith("data_subjects."):
                keys.extend((await self.subjects.subject_keys(tenant, str(value.value)))[-1:])
        await self.provenance.link(tenant, [receipt.record], [keys])

    async def compare_stores(self, tenant: str) -> StoreComparison:
        """Check that SapixDB holds every committed decision of the tenant, unchanged and not
        deleted."""
        comparer = await self.comparer(tenant)
        async for receipt in self.reads.records(tenant):
            await comparer.add(receipt)
        return await comparer.finish()

    async def comparer(self, tenant: str) -> StoreComparer:
        """A :class:`StoreComparer` for the tenant's log, to be fed as it is read (the
        verifier reads the log once for its checks and this comparison)."""
        # decision id -> SapixDB id: one short pair per decision (the log itself streams).
        indexed = {decision: sapix async for decision, sapix in self.reads.sapix_ids(tenant)}
        return StoreComparer(self.provenance, indexed, await self.provenance.deleted_ids())

    async def run(self, *, grace_ms: int = 60_000, settled: int = 1000) -> int:
        """Tombstone SapixDB records whose Genesis DB commit never happened; how many.

        Orphans can only be recent (a crash or lost connection between the two writes), so
        the scan goes newest first and stops after ``settled`` confirmed records in a row.
        Records younger than ``grace_ms`` may belong to another replica's write in flight
        and are left alone.
        """
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        orphans: list[str] = []
        discarded = await self.provenance.deleted_ids()
        confirmed_in_a_row = 0
        before: int | None = None
        while confirmed_in_a_row < settled:
            page = await self.provenance.recent(before_hlc=before, limit=200)
            if not page:
                break
            for record in page:
                if record.record_id in discarded:
                    continue
                payload = record.payload
                tenant = payload.get("tenant") if isinstance(payload, dict) else None
                confirmed = None
                if isinstance(tenant, str):
                    confirmed = await self.reads.confirm(tenant, payload, record.record_id)
                if confirmed is not None and isinstance(tenant, str):
                    confirmed_in_a_row += 1
                    await self._relink(tenant, confirmed)
                elif now_ms - record.timestamp_ms >= grace_ms:
                    orphans.append(record.record_id)
                    confirmed_in_a_row = 0
            before = page[-1].timestamp_hlc
        await self.provenance.discard(orphans)
        return len(orphans)


class StoreComparer:
    """Compares decisions, fed in log order, with their SapixDB records (read
    :data:`COMPARE_AT_ONCE` at a time, concurrently)."""

    def __init__(
        self, provenance: ProvenanceStore, indexed: dict[str, str | None], deleted: set[str]
    ) -> None:
        self.provenance = provenance
        self.indexed = indexed
        self.deleted = deleted
        self.comparison = StoreComparison()
        self._pending: list[Receipt] = []

    async def add(self, receipt: Receipt) -> None:
        self._pending.append(receipt)
        if len(self._pending) >= COMPARE_AT_ONCE:
            await self._compare()

    async def finish(self) -> StoreComparison:
        await self._compare()
        return self.comparison

    async def _compare(self) -> None:
        receipts, self._pending = self._pending, []

        async def stored(sapix_id: str | None) -> Any:
            return None if sapix_id is None else await self.provenance.get(sapix_id)

        ids = [self.indexed.get(receipt.record["id"]) for receipt in receipts]
        found = await asyncio.gather(*(stored(sapix_id) for sapix_id in ids))
        for receipt, sapix_id, record in zip(receipts, ids, found, strict=True):
            self.comparison.checked += 1
            decision_id = receipt.record["id"]
            if record is None or sapix_id in self.deleted:
                self.comparison.note(decision_id, "missing_in_sapixdb")
            elif (
                not isinstance(record.payload, dict)
                or record.payload.get("record") != receipt.record
            ):
                self.comparison.note(decision_id, "differs_in_sapixdb")
