"""Sealing a group of requests into a batch ready to commit: each decision split into sealed
record and personal values, hashed, chained, signed and given its log index on a head; the
batch's events (decision, index, personal values, subject links, tiles, chain heads, the batch
event, idempotency records) and the preconditions that make it land only where it was sealed
for; its sealed records written to SapixDB (the outbox) meanwhile."""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uuid_utils
from opentelemetry.trace import SpanContext

from decisiontrail.ledger.events import (
    BATCH_TYPE,
    CHAIN_HEAD_TYPE,
    DECISION_TYPE,
    IDEMPOTENCY_TYPE,
    INDEX_TYPE,
    PERSONAL_TYPE,
    SUBJECT_LINK_TYPE,
    TILE_TYPE,
    PreparedDecision,
    Receipt,
    TenantHead,
    batch_subject,
    chain_subject,
    decision_subject,
    event,
    idempotency_subject,
    index_subject,
    is_new,
    personal_subject,
    subject_path,
    tile_subject,
)
from decisiontrail.ledger.failures import IdempotencyKeyReusedError, LedgerError
from decisiontrail.ledger.outbox import Outbox
from decisiontrail.ledger.reads import Reads
from decisiontrail.ledger.subjects import Subjects
from decisiontrail.records import GENESIS_HASH, PersonalValue, seal_with_leaf, split_personal
from decisiontrail.signing import Keyring
from decisiontrail.tlog import TileFrontier
from decisiontrail.tracing import tracer
from ledgerstore import merkle

STORE_CHUNK = 250  # sealed records per SapixDB write when a worker process writes them
WORKER_MIN_DECISIONS = 50  # smaller batches are written in this process (lower latency)


def in_workers(decisions: int) -> bool:
    """Whether a batch is written through the worker processes: small batches are written
    in this one (a hop to another process would cost them more than it saves)."""
    return decisions >= WORKER_MIN_DECISIONS


@dataclass(frozen=True)
class Request:
    """One caller's decisions waiting for the tenant's writer."""

    decisions: Sequence[PreparedDecision]
    idempotency_key: str | None
    body_hash: str | None  # of the client's request, to tell a retry from a reused key
    future: asyncio.Future[list[Receipt]]
    span: SpanContext  # the caller's, linked from the commit's span


Answer = list[Receipt] | LedgerError  # a request's receipts, or why it gets none


@dataclass(frozen=True)
class Batch:
    """A group sealed and in SapixDB, ready to commit to Genesis DB."""

    group: list[Request]
    earlier: list[Answer | None]  # per request: its answer if its key was seen before
    fresh: list[Request]  # the requests this batch records
    events: list[dict[str, Any]]
    preconditions: list[dict[str, Any]]
    receipts: list[Receipt]  # of the fresh requests' decisions, in order
    new_head: TenantHead
    subject_keys: list[list[str]]
    fresh_keys: dict[tuple[str, str], str]

    @property
    def in_workers(self) -> bool:
        return in_workers(len(self.receipts))

    def answers(self) -> list[Answer]:
        """Each request's answer: its earlier one, or its share of this batch's receipts."""
        out: list[Answer] = []
        offset = 0
        for request, earlier in zip(self.group, self.earlier, strict=True):
            if earlier is not None:
                out.append(earlier)
                continue
            out.append(self.receipts[offset : offset + len(request.decisions)])
            offset += len(request.decisions)
        return out


class Sealer:
    def __init__(self, keyring: Keyring, reads: Reads, subjects: Subjects, outbox: Outbox) -> None:
        self.keyring = keyring
        self.reads = reads
        self.subjects = subjects
        self.outbox = outbox

    async def _earlier(self, tenant: str, request: Request) -> Answer | None:
        """The answer a request's Idempotency-Key already has: the first request's receipts
        (marked as replayed), or an error if that request's body differed."""
        if request.idempotency_key is None:
            return None
        first = await self.reads.idempotent_result(tenant, request.idempotency_key)
        if first is None:
            return None
        hashes = (first["body_hash"], request.body_hash)  # None: a caller that sent none
        if None not in hashes and hashes[0] != hashes[1]:
            return IdempotencyKeyReusedError(
                "this Idempotency-Key was used with a different request body"
            )
        return [
            Receipt(r.record, r.log_index, r.sapix_id, replayed=True) for r in first["receipts"]
        ]

    async def prepare(
        self,
        tenant: str,
        group: list[Request],
        head: TenantHead,
        provisional_keys: dict[tuple[str, str], str],
    ) -> Batch:
        """Seal a group's decisions on ``head`` and write them to SapixDB: a batch ready to
        commit. ``provisional_keys`` are subject keys of a batch still committing."""
        # A key committed meanwhile (a retry, another replica) is answered from its record.
        results = [await self._earlier(tenant, request) for request in group]
        fresh = [r for r, earlier in zip(group, results, strict=True) if earlier is None]
        if not fresh:
            return Batch(group, results, [], [], [], [], head, [], {})
        decisions = [d for request in fresh for d in request.decisions]
        keys: list[tuple[Request, int, int]] = []
        offset = 0
        for request in fresh:
            if request.idempotency_key is not None:
                keys.append((request, offset, offset + len(request.decisions)))
            offset += len(request.decisions)
        if len({r.idempotency_key for r, _, _ in keys}) < len(keys):
            # The same key twice in one group: commit the first alone, the rest after it.
            raise LedgerError("an idempotency key repeats within one commit")
        subject_keys, key_events, fresh_keys = await self.subjects.keys_for(
            tenant, decisions, provisional_keys
        )
        # In a SapixDB worker, each chunk of sealed records goes in while the next chunk is
        # sealed here.
        workers = in_workers(len(decisions))
        stores: list[asyncio.Task[list[str]]] = []
        chunk = STORE_CHUNK if workers and self.outbox.provenance.worker else len(decisions)
        try:
            with tracer.start_as_current_span("decision.sign"):
                events, preconditions, receipts, new_head = await self._seal(
                    tenant, head, decisions, keys, subject_keys,
                    on_sealed=functools.partial(self.outbox.start_store, tenant, stores, workers),
                    chunk=chunk,
                )  # fmt: skip
        except BaseException:
            await self.outbox.discard_stores(stores)
            raise
        events.extend(key_events)
        used = [key for per_decision in subject_keys for key in per_decision]
        created = [str(e["data"]["key"]) for e in key_events]  # keys this batch creates
        preconditions.extend(await self.subjects.keys_unerased(tenant, used, created))
        with tracer.start_as_current_span("decision.store.sapixdb"):
            receipts = await self.outbox.stored(receipts, events, stores)
        return Batch(
            group, results, fresh, events, preconditions, receipts, new_head, subject_keys,
            fresh_keys,
        )  # fmt: skip

    async def _seal(
        self,
        tenant: str,
        head: TenantHead,
        decisions: Sequence[PreparedDecision],
        idempotency_keys: Sequence[tuple[Request, int, int]],
        subject_keys: Sequence[Sequence[str]],
        *,
        on_sealed: Callable[[list[Receipt]], None],
        chunk: int,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Receipt], TenantHead]:
        """The events of one batch: ``idempotency_keys`` name which decisions (``[start,
        end)``) each keyed request stands for. ``on_sealed`` gets the receipts of every
        ``chunk`` decisions as soon as they are sealed (and the loop runs in between)."""
        now = datetime.now(UTC)
        chains = dict(head.chains)
        events: list[dict[str, Any]] = []
        receipts: list[Receipt] = []
        sealed_until = 0  # receipts before this were handed to on_sealed
        leaves: list[bytes] = []
        for offset, prepared in enumerate(decisions):
            agent = str(prepared.decision["agent"])
            sequence, prev_hash = chains.get(agent, (0, GENESIS_HASH))
            committed, personal = split_personal(prepared.decision, prepared.personal)
            decision_id = str(uuid_utils.uuid7())
            record, leaf = seal_with_leaf(
                decision=committed, record_id=decision_id, tenant=tenant, chain=agent,
                sequence=sequence, prev_hash=prev_hash, recorded_at=now, keyring=self.keyring,
            )  # fmt: skip
            chains[agent] = (sequence + 1, record["hash"])
            log_index = head.size + offset
            receipts.append(Receipt(record, log_index))
            leaves.append(merkle.leaf_hash(leaf))
            events.append(
                event(
                    decision_subject(tenant, agent, decision_id),
                    DECISION_TYPE,
                    {"record": record, "log_index": log_index},
                )
            )
            events.append(
                event(
                    index_subject(tenant, decision_id),
                    INDEX_TYPE,
                    {"agent": agent, "log_index": log_index},
                )
            )
            events.extend(_personal_events(tenant, decision_id, personal, subject_keys[offset]))
            if len(receipts) - sealed_until == chunk or len(receipts) == len(decisions):
                on_sealed(receipts[sealed_until:])
                sealed_until = len(receipts)
                await asyncio.sleep(0)  # let that chunk's write start
        frontier = TileFrontier.from_json(head.frontier.to_json())  # a copy to advance
        for tile in frontier.extend(leaves):
            events.append(
                event(
                    tile_subject(tenant, tile.level, tile.index),
                    TILE_TYPE,
                    {"hashes": base64.b64encode(tile.hashes).decode()},
                )
            )
        for agent in dict.fromkeys(str(d.decision["agent"]) for d in decisions):
            next_sequence, last_hash = chains[agent]
            events.append(
                event(
                    chain_subject(tenant, agent),
                    CHAIN_HEAD_TYPE,
                    {"chain": agent, "next_sequence": next_sequence, "hash": last_hash},
                )
            )
        start = batch_subject(tenant, head.size)
        batch = {"start": head.size, "count": len(decisions), "frontier": frontier.to_json()}
        events.append(event(start, BATCH_TYPE, batch))
        preconditions = [is_new(start)]
        for request, first, end in idempotency_keys:
            assert request.idempotency_key is not None
            key_subject = idempotency_subject(tenant, request.idempotency_key)
            ids = [receipt.record["id"] for receipt in receipts[first:end]]
            recorded = {"decision_ids": ids, "body_hash": request.body_hash}
            events.append(event(key_subject, IDEMPOTENCY_TYPE, recorded))
            preconditions.append(is_new(key_subject))
        return events, preconditions, receipts, TenantHead(chains, frontier)


def _personal_events(
    tenant: str,
    decision_id: str,
    personal: list[PersonalValue],
    subject_keys: Sequence[str],
) -> list[dict[str, Any]]:
    if not personal:
        return []
    values = [
        {"path": p.path, "value": p.value, "salt": base64.b64encode(p.salt).decode()}
        for p in personal
    ]
    events = [
        event(
            personal_subject(tenant, decision_id),
            PERSONAL_TYPE,
            {"decision_id": decision_id, "values": values},
            erasable=True,
        )
    ]
    for key in dict.fromkeys(subject_keys):
        events.append(
            event(
                f"{subject_path(tenant, key)}/decisions/{decision_id}",
                SUBJECT_LINK_TYPE,
                {"tenant": tenant, "decision_id": decision_id},
            )
        )
    return events
