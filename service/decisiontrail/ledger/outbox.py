"""The SapixDB side of a batch: sealed records written before the Genesis DB commit (an outbox
no read trusts until Genesis DB confirms it), tombstoned when the commit surely failed, and the
provenance edges written beside the commit. Each write is timed for the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from decisiontrail.ledger.events import INDEX_TYPE, Receipt
from decisiontrail.provenance import ProvenanceStore
from genesisdb import PreconditionFailedError

StoreCallback = Callable[[str, str, float, bool], None]


class Outbox:
    def __init__(
        self, provenance: ProvenanceStore, on_store_call: StoreCallback | None = None
    ) -> None:
        self.provenance = provenance
        self.on_store_call = on_store_call  # told (store, operation, seconds, ok) of each write

    @contextlib.contextmanager
    def store_call(self, store: str, operation: str) -> Iterator[None]:
        """Time a store write for ``on_store_call``; a lost precondition is no store error."""
        started, ok = time.perf_counter(), False
        try:
            yield
            ok = True
        except PreconditionFailedError:
            ok = True
            raise
        finally:
            if self.on_store_call is not None:
                self.on_store_call(store, operation, time.perf_counter() - started, ok)

    def start_store(
        self,
        tenant: str,
        stores: list[asyncio.Task[list[str]]],
        in_worker: bool,
        receipts: list[Receipt],
    ) -> None:
        """Start writing a chunk of sealed records (its task joins ``stores``)."""
        stores.append(asyncio.create_task(self._store_chunk(tenant, receipts, in_worker)))

    async def _store_chunk(
        self, tenant: str, receipts: list[Receipt], in_worker: bool
    ) -> list[str]:
        sealed = [(r.record, r.log_index) for r in receipts]
        with self.store_call("sapixdb", "ingest"):
            return await self.provenance.store(tenant, sealed, in_worker=in_worker)

    async def discard_stores(self, stores: list[asyncio.Task[list[str]]]) -> None:
        """Tombstone what the chunk writes of a batch that will not be committed wrote."""
        results = await asyncio.gather(*stores, return_exceptions=True)
        await self.provenance.discard(
            [i for result in results if isinstance(result, list) for i in result]
        )

    async def discard(self, receipts: list[Receipt]) -> None:
        await self.provenance.discard([r.sapix_id for r in receipts if r.sapix_id])

    async def stored(
        self,
        receipts: list[Receipt],
        events: list[dict[str, Any]],
        stores: list[asyncio.Task[list[str]]],
    ) -> list[Receipt]:
        """Wait for the batch's records to be in SapixDB (all chunks, or none: a chunk that
        failed takes the others back); name their ids in the batch's index events."""
        results = await asyncio.gather(*stores, return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self.provenance.discard(
                [i for result in results if isinstance(result, list) for i in result]
            )
            raise failure
        sapix_ids = [i for result in results if isinstance(result, list) for i in result]
        index_events = [e for e in events if e["type"] == INDEX_TYPE]
        for found, sapix_id in zip(index_events, sapix_ids, strict=True):
            found["data"]["sapix_id"] = sapix_id
        return [
            Receipt(r.record, r.log_index, sapix_id)
            for r, sapix_id in zip(receipts, sapix_ids, strict=True)
        ]

    async def link(
        self,
        tenant: str,
        records: list[dict[str, Any]],
        subject_keys: list[list[str]],
        in_worker: bool = True,
    ) -> None:
        """Write a batch's provenance edges (derived data: the repair pass rewrites them)."""
        with self.store_call("sapixdb", "add_edges"):
            await self.provenance.link(tenant, records, subject_keys, in_worker=in_worker)
