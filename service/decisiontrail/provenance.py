"""The provenance side of the ledger, in SapixDB: every sealed decision goes in through
``db.ingest("ai_decisions", …)`` with graph edges to its run, parent run, session, agent,
model and data subjects, for provenance queries, time travel and filtered listing.

SapixDB strands cannot erase anything, so nothing personal goes in: the sealed record holds
only salted commitments, and data subjects appear by their random subject keys (``subject:…``
nodes), whose mapping to the person erasure destroys, and whose edges it removes.

Genesis DB is the source of truth. Records are written here *before* the Genesis DB commit
that makes a decision exist, so an acknowledged decision is always in both stores; a record
whose commit then failed is an orphan, invisible because every read confirms each record
against Genesis DB, and tombstoned by :meth:`ProvenanceStore.discard` (at once, or by the
repair pass on start-up).

Graph nodes of decisions are named by decision id (``decision:{tenant}:{id}``), not by
SapixDB record id, so the edges need no answer from the record write and are written while
Genesis DB commits. They are derived from the record: if writing them fails after the commit,
the repair pass writes them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from decisiontrail.store_workers import SapixWorker, WorkerUnavailable
from sapixdb import MAX_EDGE_BATCH, AsyncSapixClient, Record, SapixError

COLLECTION = "ai_decisions"
GRAPH = "decisiontrail"  # the client's agent name: SapixDB's graph of that name
MAX_TREE_DEPTH = 10  # SapixDB traverses at most 10 hops
EDGES_PER_WORKER_CALL = 1_500  # about 30 ms of the worker's time
# Edge types, from a decision (or a run) to what it belongs to.
RUN, PARENT, PARENT_RUN, SESSION, AGENT, MODEL, SUBJECT = (
    "run",
    "parent",
    "parent_run",
    "session",
    "agent",
    "model",
    "subject",
)


def node(kind: str, tenant: str, name: str) -> str:
    """A graph node that is not a record: ``run:{tenant}:{run id}`` and the like."""
    return f"{kind}:{tenant}:{name}"


def document(tenant: str, record: dict[str, Any], log_index: int) -> dict[str, Any]:
    """What SapixDB stores for a decision: the sealed record and flat fields to filter on."""
    decision = record["decision"]
    model = decision.get("model") or {}
    doc: dict[str, Any] = {
        "tenant": tenant,
        "decision_id": record["id"],
        "log_index": log_index,
        "agent": record["chain"],
        "action": decision["action"],
        "kind": decision.get("kind", "custom"),
        "model": model.get("name"),
        "session_id": decision.get("session_id"),
        "run_id": decision.get("run_id"),
        "parent_run_id": decision.get("parent_run_id"),
        "tags": decision.get("tags"),
        "recorded_at": record["recorded_at"],
        "record": record,
    }
    return {key: value for key, value in doc.items() if value is not None}


def decision_node(tenant: str, decision_id: str) -> str:
    return node("decision", tenant, decision_id)


def decision_id_of(graph_node: str, tenant: str) -> str | None:
    """The decision id a graph node names, if it is one of the tenant's decision nodes."""
    prefix = f"decision:{tenant}:"
    return graph_node[len(prefix) :] if graph_node.startswith(prefix) else None


def edges_of(
    tenant: str, record: dict[str, Any], subject_keys: Iterable[str]
) -> list[tuple[str, str, str]]:
    """The (src, dst, type) edges that place one sealed decision in the provenance graph."""
    decision = record["decision"]
    source = decision_node(tenant, record["id"])
    edges = [(source, node("agent", tenant, record["chain"]), AGENT)]
    run_id, parent_run_id = decision.get("run_id"), decision.get("parent_run_id")
    if run_id is not None:
        run = node("run", tenant, run_id)
        edges.append((source, run, RUN))
        if parent_run_id is not None:
            edges.append((run, node("run", tenant, parent_run_id), PARENT))
    elif parent_run_id is not None:
        edges.append((source, node("run", tenant, parent_run_id), PARENT_RUN))
    if decision.get("session_id") is not None:
        edges.append((source, node("session", tenant, decision["session_id"]), SESSION))
    model = decision.get("model") or {}
    if model.get("name"):
        name = f"{model.get('provider', '')}/{model['name']}"
        edges.append((source, node("model", tenant, name), MODEL))
    edges.extend((source, node("subject", tenant, k), SUBJECT) for k in dict.fromkeys(subject_keys))
    return edges


@dataclass(frozen=True)
class ListFilter:
    """Filters of ``GET /v1/decisions``; every one given must match (AND)."""

    agent: str | None = None
    model: str | None = None
    action: str | None = None
    kind: str | None = None
    session: str | None = None
    tag: str | None = None
    since: str | None = None  # recorded_at bounds, RFC 3339 as records spell them
    until: str | None = None
    decision_ids: frozenset[str] | None = None  # e.g. a data subject's decisions

    def conditions(self, tenant: str) -> list[dict[str, Any]]:
        spec: list[dict[str, Any]] = [{"field": "tenant", "op": "eq", "value": tenant}]
        for name in ("agent", "model", "action", "kind"):
            value = getattr(self, name)
            if value is not None:
                spec.append({"field": name, "op": "eq", "value": value})
        if self.session is not None:
            spec.append({"field": "session_id", "op": "eq", "value": self.session})
        if self.tag is not None:
            spec.append({"field": "tags", "op": "contains", "value": self.tag})
        if self.since is not None:
            spec.append({"field": "recorded_at", "op": "gte", "value": self.since})
        if self.until is not None:
            spec.append({"field": "recorded_at", "op": "lte", "value": self.until})
        if self.decision_ids is not None:
            spec.append({"field": "decision_id", "op": "in", "value": sorted(self.decision_ids)})
        return spec


class ProvenanceStore:
    """Decisions and their provenance graph in SapixDB, through the SDK's async client."""

    def __init__(self, client: AsyncSapixClient, worker: SapixWorker | None = None) -> None:
        self.client = client
        self.collection = client.collection(COLLECTION)
        self.worker = worker  # does the writes in a child process (embedded SapixDB)

    async def store(
        self,
        tenant: str,
        sealed: Sequence[tuple[dict[str, Any], int]],
        *,
        in_worker: bool = True,
    ) -> list[str]:
        """Ingest sealed records (with their log index); their SapixDB ids. In the worker
        process if there is one and ``in_worker``.

        All or nothing: if the write fails, what was written is tombstoned and the error
        raised, so the caller can fail the request without leaving anything behind.
        """
        docs = [document(tenant, record, index) for record, index in sealed]
        if in_worker and self.worker is not None:
            try:
                return await self.worker.write_records(COLLECTION, docs)
            except WorkerUnavailable:
                if not self.worker.disabled:  # it died: it may have written them; take back
                    await self.discard(await self._written_by_this_batch(docs))
        ids: list[str] = []
        failure: BaseException | None = None
        try:
            if len(docs) == 1:
                ids = [(await self.client.ingest(COLLECTION, docs[0])).id]
            else:
                # The same collection, in order and in one transaction when embedded.
                ids = [w.id for w in await self.collection.write_batch(docs)]
        except SapixError as exc:
            failure = exc
            if not self.client.is_remote:
                ids = []  # embedded batches are atomic: nothing was written
            else:
                ids = await self._written_by_this_batch(docs)
        if failure is not None:
            await self.discard(ids)
            raise failure
        return ids

    async def _written_by_this_batch(self, docs: Sequence[dict[str, Any]]) -> list[str]:
        """Which of ``docs`` a failed batch did write (over HTTP, or in a worker that died),
        to discard them."""
        wanted = {doc["decision_id"] for doc in docs}
        condition = [{"field": "decision_id", "op": "in", "value": sorted(wanted)}]
        try:
            found = await self.collection.find(condition, limit=len(wanted))
        except SapixError:
            return []  # the repair pass on start-up tombstones what is left
        return [record.record_id for record in found]

    async def link(
        self,
        tenant: str,
        records: Sequence[dict[str, Any]],
        subject_keys: Sequence[Sequence[str]],
        *,
        in_worker: bool = True,
    ) -> None:
        """Write the graph edges of sealed records, each call all or none.

        In the worker process a call holds at most :data:`EDGES_PER_WORKER_CALL` edges, sent
        one after the other: the next batch's records (written by the same process, into the
        same database) then wait for one call, not for all of them.
        """
        edges = [
            edge
            for record, subjects in zip(records, subject_keys, strict=True)
            for edge in edges_of(tenant, record, subjects)
        ]
        size = MAX_EDGE_BATCH
        if in_worker and self.worker is not None:
            size = min(size, EDGES_PER_WORKER_CALL)
            try:
                for start in range(0, len(edges), size):
                    await self.worker.add_edges(edges[start : start + size])
                return
            except WorkerUnavailable:
                pass  # write them here (an edge written twice is still one edge)
        for start in range(0, len(edges), size):
            await self.client.graph.add_edges(edges[start : start + size])

    async def is_linked(self, tenant: str, decision_id: str) -> bool:
        """Whether the decision's edges are in the graph (every decision has an agent edge)."""
        return bool(await self.client.graph.edges(decision_node(tenant, decision_id)))

    async def discard(self, record_ids: Iterable[str]) -> None:
        """Tombstone records whose decisions were never committed (best effort)."""
        await asyncio.gather(
            *(self.collection.delete(record_id) for record_id in record_ids),
            return_exceptions=True,
        )

    async def unlink_subject(self, tenant: str, key: str, decision_ids: Iterable[str]) -> int:
        """Remove the edges from decisions to a data subject (by its key); how many existed."""
        target = node("subject", tenant, key)
        removed = await asyncio.gather(
            *(
                self.client.graph.remove_edge(decision_node(tenant, d), target, SUBJECT)
                for d in decision_ids
            )
        )
        return sum(1 for r in removed if r)

    async def get(self, record_id: str) -> Record | None:
        try:
            return await self.collection.get(record_id)
        except SapixError as exc:
            if exc.status == 404:
                return None
            raise

    async def page(
        self, tenant: str, where: ListFilter, *, before_hlc: int | None, limit: int
    ) -> list[Record]:
        """Up to ``limit`` matching records written before ``before_hlc``, newest first."""
        conditions = where.conditions(tenant)
        if before_hlc is None:
            return await self.collection.find(conditions, limit=limit)
        return await self.collection.as_of(before_hlc - 1).find(conditions, limit=limit)

    async def recent(self, *, before_hlc: int | None, limit: int) -> list[Record]:
        """Decision records of every tenant (orphans included), newest first."""
        decisions = [{"field": "log_index", "op": "gte", "value": 0}]  # not tombstones
        if before_hlc is None:
            return await self.collection.find(decisions, limit=limit)
        return await self.collection.as_of(before_hlc - 1).find(decisions, limit=limit)

    async def deleted_ids(self) -> set[str]:
        """The ids of records tombstoned so far."""
        return {
            str(d["original_record"]["record_id"])
            for d in await self.collection.deleted()
            if isinstance(d.get("original_record"), dict)
        }

    async def tree(self, start: str, direction: str, depth: int = MAX_TREE_DEPTH) -> Any:
        return await self.client.graph.traverse(start, depth=depth, direction=direction)

    async def members(self, tenant: str, group: str, edge_type: str) -> list[str]:
        """The ids of decisions with an edge of ``edge_type`` into ``group`` (a run or
        session)."""
        found = await self.client.graph.traverse(group, depth=1, direction="inbound")
        ids = [
            decision_id_of(e.src, tenant)
            for e in found.edges
            if e.dst == group and e.edge_type == edge_type
        ]
        return [i for i in ids if i is not None]
