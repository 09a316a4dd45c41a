"""The decision ledger: sealing, chaining and committing decisions through Genesis DB, the
source of truth, with each tenant's transparency log persisted as tiles beside them.

Events (Genesis DB subjects; agent names are percent-encoded, data-subject ids never appear):

- ``/tenants/{t}/agents/{a}/decisions/{id}``  ``io.decisiontrail.decision.recorded``:
  ``{"record": <sealed record>, "log_index": n}``
- ``/tenants/{t}/decisions/{id}``  ``io.decisiontrail.decision.indexed``: the agent and log
  index, so a decision is found by id with two indexed lookups
- ``/tenants/{t}/personal/{id}``  ``io.decisiontrail.personal.stored`` — stored as reference
  (erasable): the decision's personal values with their salts
- ``/tenants/{t}/subject-keys/{HMAC-SHA256(pepper, subject id)}``
  ``io.decisiontrail.subject.key`` — stored as reference (erasable): a random key naming the
  data subject everywhere else. Erasure erases it, so nothing left behind (links, holds,
  SapixDB graph nodes) can be tied to the person again, not even with the pepper.
- ``/data-subjects/{key}/tenants/{t}/decisions/{id}``  ``io.decisiontrail.subject.linked``:
  the tenant and decision id (not erasable, and nothing personal: once the subject's key
  event is erased, no one can tell whom the key stood for)
- ``/data-subjects/{key}/tenants/{t}/hold``  legal hold placed / released
- ``/tenants/{t}/log/{start}``  ``io.decisiontrail.log.batch``: where a batch starts, how many
  records it holds, and the tile frontier after it (the unfinished tile of every level)
- ``/tenants/{t}/chains/{a}``  ``io.decisiontrail.chain.head``: a chain's next sequence number
  and last hash, after every batch that touched it
- ``/tenants/{t}/tiles/{level}/{index}``  ``io.decisiontrail.tile``: a full tlog tile
- ``/tenants/{t}/idempotency/{sha256(key)}``  ``io.decisiontrail.idempotency``

Before that commit, the batch's sealed records go to SapixDB (``db.ingest("ai_decisions", …)``
and provenance edges, see :mod:`decisiontrail.provenance`), and the index events name each
record's SapixDB id. So a committed (acknowledged) decision is in both stores; a commit that
fails leaves SapixDB records no read will confirm, which are tombstoned at once, or by
:meth:`Ledger.repair` when the outcome was unknown (a crash, a lost connection).

Each batch is one ``commit_events`` guarded by ``isSubjectNew`` on its ``log/{start}`` subject
and on its idempotency subject. Batches start exactly where the previous one ended, so a writer
whose view of the head is stale claims a start that is taken and its commit fails as a whole;
it reloads the head and retries. That makes the chains and the log safe with any number of
service replicas on one Genesis DB, and a retried request with the same Idempotency-Key returns
the decisions it first created instead of new ones.

Each tenant's writer is pipelined (:meth:`Ledger._write_group`): while one group commits, the
next is sealed and written to SapixDB on the head the first will leave; only success is
pipelined, a failed commit sends the next group back to be sealed again. With embedded
stores the writes run in worker processes (:mod:`decisiontrail.store_workers`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import functools
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uuid_utils
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext

from decisiontrail.provenance import ProvenanceStore
from decisiontrail.records import (
    GENESIS_HASH,
    PersonalValue,
    format_time,
    seal_with_leaf,
    split_personal,
)
from decisiontrail.signing import Keyring
from decisiontrail.store_workers import GenesisWorker, SapixWorker, WorkerUnavailable
from decisiontrail.tlog import (
    TileFrontier,
    TileReader,
    tiles_for_consistency,
    tiles_for_inclusion,
    tiles_for_root,
)
from decisiontrail.tracing import tracer
from decisiontrail.verification import SignedCheckpoint
from genesisdb import (
    AuthenticationError,
    BadRequestError,
    Client,
    EventTooLargeError,
    PermissionDeniedError,
    PreconditionFailedError,
    SchemaViolationError,
)
from genesisdb.events import to_dict
from ledgerstore import merkle

log = logging.getLogger("decisiontrail")

SOURCE = "decisiontrail"
DECISION_TYPE = "io.decisiontrail.decision.recorded"
INDEX_TYPE = "io.decisiontrail.decision.indexed"
PERSONAL_TYPE = "io.decisiontrail.personal.stored"
SUBJECT_LINK_TYPE = "io.decisiontrail.subject.linked"
BATCH_TYPE = "io.decisiontrail.log.batch"
CHAIN_HEAD_TYPE = "io.decisiontrail.chain.head"
TILE_TYPE = "io.decisiontrail.tile"
IDEMPOTENCY_TYPE = "io.decisiontrail.idempotency"
CHECKPOINT_TYPE = "io.decisiontrail.checkpoint"
SUBJECT_KEY_TYPE = "io.decisiontrail.subject.key"
SUBJECT_KEY_SECONDS = 10.0  # how long a replica trusts a cached subject key (erasure elsewhere)
SUBJECT_LOOKUP_CHUNK = 500  # subjects looked up in one query
HOLD_PLACED_TYPE = "io.decisiontrail.legal-hold.placed"
HOLD_RELEASED_TYPE = "io.decisiontrail.legal-hold.released"
MAX_CLAIM_RETRIES = 20
MAX_GROUP = 1_000  # decisions per group commit (a single larger request goes alone)
STORE_CHUNK = 250  # sealed records per SapixDB write when a worker process writes them
WORKER_MIN_DECISIONS = 50  # smaller batches are written in this process (lower latency)
# Commit failures after which nothing was written for sure (others may have committed).
DEFINITE_FAILURES = (
    AuthenticationError,
    BadRequestError,
    EventTooLargeError,
    PermissionDeniedError,
    SchemaViolationError,
)


class LedgerError(Exception):
    """The ledger cannot do what was asked."""


class ConflictRetriesExhaustedError(LedgerError):
    """Other writers kept moving the head; the caller may retry later."""


def tenant_path(tenant: str) -> str:
    return f"/tenants/{quote(tenant, safe='')}"


def decision_subject(tenant: str, agent: str, decision_id: str) -> str:
    return f"{tenant_path(tenant)}/agents/{quote(agent, safe='')}/decisions/{decision_id}"


def load_pepper(directory: Path) -> bytes:
    """The secret that turns data-subject ids into pseudonyms (created on first use, 0600)."""
    path = directory / "subject-pepper"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = path.open("xb")
        with descriptor:
            path.chmod(0o600)
            descriptor.write(secrets.token_bytes(32))
    return path.read_bytes()


@dataclass
class TenantHead:
    """What a writer needs to append: every chain's head and the log's tile frontier."""

    chains: dict[str, tuple[int, str]] = field(default_factory=dict)  # agent -> (next seq, hash)
    frontier: TileFrontier = field(default_factory=TileFrontier)

    @property
    def size(self) -> int:
        return self.frontier.size


@dataclass(frozen=True)
class Receipt:
    """What the client gets back for a recorded decision."""

    record: dict[str, Any]
    log_index: int
    sapix_id: str | None = None  # the record's id in SapixDB (its provenance graph node)

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "id": r["id"],
            "tenant": r["tenant"],
            "chain": r["chain"],
            "sequence": r["sequence"],
            "log_index": self.log_index,
            "hash": r["hash"],
            "prev_hash": r["prev_hash"],
            "signature": r["signature"],
            "key_id": r["key_id"],
            "recorded_at": r["recorded_at"],
        }


@dataclass
class StoreComparison:
    """What :meth:`Ledger.compare_stores` found; the first mismatch names its decision."""

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


@dataclass(frozen=True)
class _Request:
    """One caller's decisions waiting for the tenant's writer."""

    decisions: Sequence[PreparedDecision]
    idempotency_key: str | None
    future: asyncio.Future[list[Receipt]]
    span: SpanContext  # the caller's, linked from the commit's span


@dataclass(frozen=True)
class _Batch:
    """A group sealed and in SapixDB, ready to commit to Genesis DB."""

    group: list[_Request]
    earlier: list[list[Receipt] | None]  # per request: its first result if its key was seen
    fresh: list[_Request]  # the requests this batch records
    events: list[dict[str, Any]]
    preconditions: list[dict[str, Any]]
    receipts: list[Receipt]  # of the fresh requests' decisions, in order
    new_head: TenantHead
    subject_keys: list[list[str]]
    fresh_keys: dict[tuple[str, str], str]

    @property
    def in_workers(self) -> bool:
        return _in_workers(len(self.receipts))

    def answers(self) -> list[list[Receipt]]:
        """Each request's receipts: its earlier ones, or its share of this batch's."""
        out: list[list[Receipt]] = []
        offset = 0
        for request, earlier in zip(self.group, self.earlier, strict=True):
            if earlier is not None:
                out.append(earlier)
                continue
            out.append(self.receipts[offset : offset + len(request.decisions)])
            offset += len(request.decisions)
        return out


def _in_workers(decisions: int) -> bool:
    """Whether a batch is written through the worker processes: small batches are written
    in this one (a hop to another process would cost them more than it saves)."""
    return decisions >= WORKER_MIN_DECISIONS


_Ahead = tuple[list[_Request], "asyncio.Task[_Batch]"]  # a group sealed ahead, and its sealing


@dataclass(frozen=True)
class PreparedDecision:
    """A client's decision (as a plain JSON object) and its personal-field paths."""

    decision: dict[str, Any]
    personal: Sequence[str]


class _TileCache:
    """Full tiles never change: keep the recently used ones."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()

    def get(self, key: tuple[str, int, int]) -> bytes | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: tuple[str, int, int], value: bytes) -> None:
        self.items[key] = value
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)


class Ledger:
    """Records decisions for any number of tenants through one Genesis DB client."""

    def __init__(
        self,
        genesis: Client,
        keyring: Keyring,
        *,
        origin: str,
        pepper: bytes,
        provenance: ProvenanceStore,
        on_checkpoint: Callable[[str], None] | None = None,
        on_store_call: Callable[[str, str, float, bool], None] | None = None,
        genesis_worker: GenesisWorker | None = None,
    ) -> None:
        self.on_checkpoint = on_checkpoint  # told the tenant of every checkpoint issued
        self.on_store_call = on_store_call  # told (store, operation, seconds, ok) of each write
        self.genesis = genesis
        self.genesis_worker = genesis_worker  # commits in a child process (embedded Genesis DB)
        self.provenance = provenance
        self.keyring = keyring
        self.origin = origin
        self.pepper = pepper
        self._heads: dict[str, TenantHead] = {}
        self._pending: dict[str, list[_Request]] = {}
        self._subject_keys: dict[tuple[str, str], tuple[float, str]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._answering: dict[str, asyncio.Task[None]] = {}  # the last group's answer
        self._tiles = _TileCache()

    def workers(self) -> list[SapixWorker | GenesisWorker]:
        """The child processes that do this ledger's writes (none with remote stores)."""
        found = [self.provenance.worker, self.genesis_worker]
        return [worker for worker in found if worker is not None]

    def tenants(self) -> list[str]:
        """The tenants this process has read or written."""
        return list(self._heads)

    def checkpoint_origin(self, tenant: str) -> str:
        return f"{self.origin}/{tenant}"

    def pseudonym(self, subject_id: str) -> str:
        return hmac.new(self.pepper, subject_id.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def subject_path(tenant: str, key: str) -> str:
        """Where a data subject's links within one tenant live, under the subject's key."""
        return f"/data-subjects/{key}/tenants/{quote(tenant, safe='')}"

    def _key_registry(self, tenant: str, subject_id: str) -> str:
        return f"{tenant_path(tenant)}/subject-keys/{self.pseudonym(subject_id)}"

    # --- data subjects -----------------------------------------------------------------------

    async def subject_keys(self, tenant: str, subject_id: str) -> list[str]:
        """The subject's keys not erased (usually one; replicas racing may have made two)."""
        keys = []
        for event in await self.genesis.stream_events(self._key_registry(tenant, subject_id)):
            data = to_dict(event)["data"]
            key = data.get("key") if isinstance(data, dict) else None
            if isinstance(key, str) and key:
                keys.append(key)
        return keys

    async def _subject_keys_for(
        self,
        tenant: str,
        decisions: Sequence[PreparedDecision],
        provisional: dict[tuple[str, str], str],
    ) -> tuple[list[list[str]], list[dict[str, Any]], dict[tuple[str, str], str]]:
        """Each decision's subject keys, the key events for subjects seen for the first time,
        and the keys to remember once the batch is committed. ``provisional`` keys (of a batch
        being committed before this one) count as known."""
        found: dict[str, str] = {}
        fresh: dict[tuple[str, str], str] = {}
        events: list[dict[str, Any]] = []
        now = time.monotonic()
        unknown: list[str] = []
        for subject_id in dict.fromkeys(
            str(s) for d in decisions for s in d.decision.get("data_subjects") or []
        ):
            pseudonym = self.pseudonym(subject_id)
            if (tenant, pseudonym) in provisional:
                found[subject_id] = provisional[(tenant, pseudonym)]
                continue
            cached = self._subject_keys.get((tenant, pseudonym))
            if cached is not None and now - cached[0] < SUBJECT_KEY_SECONDS:
                found[subject_id] = cached[1]
                continue
            unknown.append(subject_id)
        known = await self._look_up_subject_keys(tenant, unknown)
        for subject_id in unknown:
            pseudonym = self.pseudonym(subject_id)
            keys = known.get(subject_id, [])
            key = keys[-1] if keys else secrets.token_hex(16)
            if not keys:
                registry = self._key_registry(tenant, subject_id)
                events.append(self._event(registry, SUBJECT_KEY_TYPE, {"key": key}, erasable=True))
            found[subject_id] = key
            fresh[(tenant, pseudonym)] = key
        per_decision = [
            [found[str(s)] for s in d.decision.get("data_subjects") or []] for d in decisions
        ]
        return per_decision, events, fresh

    async def _look_up_subject_keys(
        self, tenant: str, subject_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """The keys (not erased) of several subjects, with one indexed query per chunk (a
        query costs about three single reads, so up to three subjects are read one by one)."""
        if len(subject_ids) <= 3:
            return {s: await self.subject_keys(tenant, s) for s in subject_ids}
        registries = {self._key_registry(tenant, s): s for s in subject_ids}
        found: dict[str, list[str]] = {}
        names = list(registries)
        for start in range(0, len(names), SUBJECT_LOOKUP_CHUNK):
            listed = ", ".join(f"'{name}'" for name in names[start : start + SUBJECT_LOOKUP_CHUNK])
            rows = await self.genesis.q(
                f"STREAM e FROM events WHERE e.subject IN [{listed}] "
                f"AND e.type == '{SUBJECT_KEY_TYPE}' MAP {{subject: e.subject, key: e.data.key}}"
            )
            for row in rows:
                key = row.get("key") if isinstance(row, dict) else None
                if isinstance(key, str) and key:  # an erased key's data reads ""
                    found.setdefault(registries[row["subject"]], []).append(key)
        return found

    def _remember_subject_keys(self, keys: dict[tuple[str, str], str]) -> None:
        if len(self._subject_keys) > 100_000:
            self._subject_keys.clear()
        now = time.monotonic()
        self._subject_keys.update({ident: (now, key) for ident, key in keys.items()})

    async def _linked(self, tenant: str, key: str) -> list[str]:
        events = await self.genesis.stream_events(self.subject_path(tenant, key))
        return [
            to_dict(e)["subject"].rsplit("/", 1)[-1]
            for e in events
            if to_dict(e)["type"] == SUBJECT_LINK_TYPE
        ]

    async def subject_decisions(self, tenant: str, subject_id: str) -> list[str]:
        """The ids of the tenant's decisions linked to a data subject (none once erased)."""
        ids: list[str] = []
        for key in await self.subject_keys(tenant, subject_id):
            ids.extend(await self._linked(tenant, key))
        return list(dict.fromkeys(ids))

    async def legal_hold(self, tenant: str, subject_id: str) -> bool:
        for key in await self.subject_keys(tenant, subject_id):
            events = await self.genesis.stream_events(f"{self.subject_path(tenant, key)}/hold")
            if events and to_dict(events[-1])["type"] == HOLD_PLACED_TYPE:
                return True
        return False

    async def set_legal_hold(self, tenant: str, subject_id: str, *, placed: bool) -> None:
        kind = HOLD_PLACED_TYPE if placed else HOLD_RELEASED_TYPE
        when = format_time(datetime.now(UTC))
        keys = await self.subject_keys(tenant, subject_id)
        events = []
        if not keys:
            keys = [secrets.token_hex(16)]
            registry = self._key_registry(tenant, subject_id)
            events.append(self._event(registry, SUBJECT_KEY_TYPE, {"key": keys[0]}, erasable=True))
        for key in keys:
            events.append(self._event(f"{self.subject_path(tenant, key)}/hold", kind, {"at": when}))
        await self.genesis.commit_events(events)

    async def erase_subject(self, tenant: str, subject_id: str) -> tuple[list[str], int]:
        """Erase every personal value of the subject's decisions and the subject's keys (the
        events naming whom a key stands for; the links and holds under the key stay, tied to
        no one).

        Returns the decision ids and the number of erased values. Hashes, chains, signatures
        and proofs are untouched: records hold only salted commitments. What stays (link and
        hold subjects, SapixDB graph nodes) is named by keys nobody can tie to the person.
        """
        keys = await self.subject_keys(tenant, subject_id)
        decision_ids: list[str] = []
        for key in keys:
            decision_ids.extend(await self._linked(tenant, key))
        decision_ids = list(dict.fromkeys(decision_ids))
        erased = 0
        for decision_id in decision_ids:
            erased += await self.genesis.erase_data(f"{tenant_path(tenant)}/personal/{decision_id}")
        for key in keys:
            # Links written by earlier versions were stored by reference: erase those too.
            erased += await self.genesis.erase_data(self.subject_path(tenant, key))
            # SapixDB never held the values; cut the graph's links to the subject's key too.
            await self.provenance.unlink_subject(tenant, key, decision_ids)
        erased += await self.genesis.erase_data(self._key_registry(tenant, subject_id))
        self._subject_keys.pop((tenant, self.pseudonym(subject_id)), None)
        return decision_ids, erased

    # --- the head ----------------------------------------------------------------------------

    async def head(self, tenant: str, *, reload: bool = False) -> TenantHead:
        if reload or tenant not in self._heads:
            self._heads[tenant] = await self._load_head(tenant)
        return self._heads[tenant]

    async def _load_head(self, tenant: str) -> TenantHead:
        path = f"{tenant_path(tenant)}/log"
        rows = await self.genesis.q(
            f"STREAM e FROM events WHERE e.subject UNDER '{path}' AND e.type == '{BATCH_TYPE}' "
            "ORDER BY e.time DESC LIMIT 1 MAP e.data.frontier"
        )
        frontier = TileFrontier() if not rows else TileFrontier.from_json(rows[0])
        heads = await self.genesis.stream_events(
            f"{tenant_path(tenant)}/chains", {"latest_by_event_type": CHAIN_HEAD_TYPE}
        )
        chains: dict[str, tuple[int, str]] = {}
        for event in heads:
            data = to_dict(event)["data"]
            chains[str(data["chain"])] = (int(data["next_sequence"]), str(data["hash"]))
        return TenantHead(chains, frontier)

    # --- writing -----------------------------------------------------------------------------

    async def record(
        self,
        tenant: str,
        decisions: Sequence[PreparedDecision],
        *,
        idempotency_key: str | None = None,
    ) -> list[Receipt]:
        """Seal, chain and commit decisions atomically; retried claims never fork a chain.

        Requests are group-committed: each tenant has one writer task that takes every request
        waiting when it is free and commits them as one batch, so concurrent single-decision
        requests share a commit instead of queueing for one each. Each request still succeeds
        or fails on its own: a group that fails is halved until the bad request is alone. An
        Idempotency-Key seen before is answered with its first result (checked by the writer,
        right before each commit attempt).
        """
        if not decisions:
            raise LedgerError("nothing to record")
        future = asyncio.get_running_loop().create_future()
        span = trace.get_current_span().get_span_context()
        request = _Request(decisions, idempotency_key, future, span)
        self._pending.setdefault(tenant, []).append(request)
        writer = self._writers.get(tenant)
        if writer is None or writer.done():
            # Its own task (a caller that goes away cannot cancel others' commits) with an
            # empty context, so its spans and logs do not join the first caller's trace.
            self._writers[tenant] = asyncio.create_task(
                self._write_pending(tenant), context=contextvars.Context()
            )
        with tracer.start_as_current_span("decision.store"):
            return await asyncio.shield(request.future)

    async def _write_pending(self, tenant: str) -> None:
        pending = self._pending.setdefault(tenant, [])
        ahead: _Ahead | None = None
        while pending or ahead is not None:
            if ahead is not None:
                group, preparing = ahead
            else:
                group, preparing = self._take(pending), None
            ahead = None
            try:
                ahead = await self._write_group(tenant, group, preparing)
            except BaseException as exc:  # never leave a caller waiting
                for request in group:
                    if not request.future.done():
                        request.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    @staticmethod
    def _take(pending: list[_Request]) -> list[_Request]:
        """The next group: waiting requests, in order, up to MAX_GROUP decisions."""
        group: list[_Request] = []
        size = 0
        while pending and (not group or size + len(pending[0].decisions) <= MAX_GROUP):
            request = pending.pop(0)
            group.append(request)
            size += len(request.decisions)
        return group

    async def _write_group(
        self, tenant: str, group: list[_Request], preparing: asyncio.Task[_Batch] | None
    ) -> _Ahead | None:
        """Commit a group; while it commits, seal the next one (and write its SapixDB records)
        on the head this one will leave. Returns that next group, sealed or being sealed.

        Only success is pipelined: if the commit fails, the next group's work is dropped and
        its requests go back to the front of the queue; this group is then retried on the
        real head if another writer moved it, or halved until the bad request is alone (as
        in :meth:`_commit_group`).
        """
        links = [Link(r.span) for r in group if r.span.is_valid]
        ahead: _Ahead | None = None
        with tracer.start_as_current_span("decision.commit", links=links) as span:
            span.set_attribute("decisiontrail.requests", len(group))
            try:
                if preparing is None:
                    batch = await self._prepare(tenant, group, await self.head(tenant), {})
                else:
                    batch = await preparing
            except Exception as exc:
                await self._failed(tenant, group, exc)
                return None
            committing = asyncio.create_task(self._finish(tenant, batch))
            pending = self._pending[tenant]
            try:
                if pending:
                    following = self._take(pending)
                    prepare = self._prepare(tenant, following, batch.new_head, batch.fresh_keys)
                    ahead = (following, asyncio.create_task(prepare))
                results, linking = await committing
            except PreconditionFailedError:
                if ahead is not None:
                    await self._put_back(tenant, ahead)
                await self.head(tenant, reload=True)  # someone else wrote: catch up, retry
                await self._commit_group(tenant, group)
                return None
            except Exception as exc:
                if ahead is not None:
                    await self._put_back(tenant, ahead)
                await self._failed(tenant, group, exc)
                return None
            except BaseException as exc:
                if ahead is not None:
                    ahead[1].cancel()
                    for request in ahead[0]:
                        if not request.future.done():
                            request.future.set_exception(exc)
                raise
        await self._answer(tenant, group, results, linking)
        return ahead

    async def _put_back(self, tenant: str, ahead: _Ahead) -> None:
        """Undo a group sealed ahead on a head that did not come to be: tombstone its SapixDB
        records and queue its requests first again."""
        group, preparing = ahead
        try:
            batch = await preparing
        except Exception:
            pass  # it cleaned up after itself
        else:
            await self.provenance.discard([r.sapix_id for r in batch.receipts if r.sapix_id])
        finally:
            self._pending[tenant][:0] = group  # even if cancelled: the next writer takes them

    async def _commit_group(self, tenant: str, group: list[_Request]) -> None:
        """The careful path: commit with retries; a group that fails is halved until the bad
        request is alone."""
        try:
            results, linking = await self._commit(tenant, group)
        except Exception as exc:
            await self._failed(tenant, group, exc)
            return
        await self._answer(tenant, group, results, linking)

    async def _failed(self, tenant: str, group: list[_Request], exc: Exception) -> None:
        """A group failed: one request alone gets the error; more are halved and retried, so
        that one bad request does not fail the others."""
        if len(group) == 1:
            group[0].future.set_exception(exc)
            return
        middle = len(group) // 2
        await self._commit_group(tenant, group[:middle])
        await self._commit_group(tenant, group[middle:])

    async def _answer(
        self,
        tenant: str,
        group: list[_Request],
        results: list[list[Receipt]],
        linking: asyncio.Future[None],
    ) -> None:
        """The group is committed; its callers are answered once its edges are written too,
        while the next group goes on (at most one group's edges behind)."""
        previous = self._answering.get(tenant)
        self._answering[tenant] = asyncio.create_task(
            self._answer_after_edges(tenant, group, results, linking)
        )
        if previous is not None:
            await previous

    async def _answer_after_edges(
        self,
        tenant: str,
        group: list[_Request],
        results: list[list[Receipt]],
        linking: asyncio.Future[None],
    ) -> None:
        try:
            await linking
        except BaseException:
            # Committed and in both stores; only the derived edges are missing. The repair
            # pass writes them again (see Ledger.repair).
            log.exception("graph edges were not written", extra={"tenant": tenant})
        finally:
            for request, receipts in zip(group, results, strict=True):
                if not request.future.done():
                    request.future.set_result(receipts)

    async def _commit(
        self, tenant: str, group: list[_Request]
    ) -> tuple[list[list[Receipt]], asyncio.Future[None]]:
        """Commit a group's decisions as one batch, retrying on a moved head: each request's
        receipts, and the task writing the batch's graph edges."""
        for _ in range(MAX_CLAIM_RETRIES):
            batch = await self._prepare(tenant, group, await self.head(tenant), {})
            try:
                return await self._finish(tenant, batch)
            except PreconditionFailedError:
                await self.head(tenant, reload=True)  # someone else wrote: catch up, retry
        raise ConflictRetriesExhaustedError("the log head kept moving; retry the request")

    async def _prepare(
        self,
        tenant: str,
        group: list[_Request],
        head: TenantHead,
        provisional_keys: dict[tuple[str, str], str],
    ) -> _Batch:
        """Seal a group's decisions on ``head`` and write them to SapixDB: a batch ready to
        commit. ``provisional_keys`` are subject keys of a batch still committing."""
        results: list[list[Receipt] | None] = []
        for request in group:  # a key committed meanwhile (a retry, another replica)
            earlier = None
            if request.idempotency_key is not None:
                earlier = await self._idempotent_result(tenant, request.idempotency_key)
            results.append(earlier)
        fresh = [r for r, earlier in zip(group, results, strict=True) if earlier is None]
        if not fresh:
            return _Batch(group, results, [], [], [], [], head, [], {})
        decisions = [d for request in fresh for d in request.decisions]
        keys: list[tuple[str, int, int]] = []
        offset = 0
        for request in fresh:
            if request.idempotency_key is not None:
                end = offset + len(request.decisions)
                keys.append((request.idempotency_key, offset, end))
            offset += len(request.decisions)
        if len({key for key, _, _ in keys}) < len(keys):
            # The same key twice in one group: commit the first alone, the rest after it.
            raise LedgerError("an idempotency key repeats within one commit")
        subject_keys, key_events, fresh_keys = await self._subject_keys_for(
            tenant, decisions, provisional_keys
        )
        # In a SapixDB worker, each chunk of sealed records goes in while the next chunk is
        # sealed here.
        in_workers = _in_workers(len(decisions))
        stores: list[asyncio.Task[list[str]]] = []
        chunk = STORE_CHUNK if in_workers and self.provenance.worker else len(decisions)
        try:
            with tracer.start_as_current_span("decision.sign"):
                events, preconditions, receipts, new_head = await self._batch(
                    tenant, head, decisions, keys, subject_keys,
                    on_sealed=functools.partial(self._start_store, tenant, stores, in_workers),
                    chunk=chunk,
                )  # fmt: skip
        except BaseException:
            await self._discard_stores(stores)
            raise
        events.extend(key_events)
        with tracer.start_as_current_span("decision.store.sapixdb"):
            receipts = await self._store_provenance(receipts, events, stores)
        return _Batch(
            group, results, fresh, events, preconditions, receipts, new_head, subject_keys,
            fresh_keys,
        )  # fmt: skip

    async def _finish(
        self, tenant: str, batch: _Batch
    ) -> tuple[list[list[Receipt]], asyncio.Future[None]]:
        """Commit a prepared batch to Genesis DB, its graph edges written meanwhile: each
        request's receipts and the edges' task. A commit that surely wrote nothing (a lost
        precondition, a refused batch) tombstones the batch's SapixDB records."""
        if not batch.fresh:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return batch.answers(), done
        sapix_ids = [r.sapix_id for r in batch.receipts if r.sapix_id is not None]
        # The edges (derived data) go in while Genesis DB commits: another file, another
        # fsync, in parallel.
        records = [r.record for r in batch.receipts]
        linking = asyncio.create_task(
            self._link(tenant, records, batch.subject_keys, batch.in_workers)
        )
        events = batch.events
        try:
            with (
                tracer.start_as_current_span("decision.store.genesisdb"),
                self._store_call("genesisdb", "commit"),
            ):
                await self._commit_events(
                    events, batch.preconditions, events[0]["subject"], batch.in_workers
                )
        except (PreconditionFailedError, *DEFINITE_FAILURES):
            await asyncio.gather(linking, return_exceptions=True)
            await self.provenance.discard(sapix_ids)
            raise
        except BaseException:
            await asyncio.gather(linking, return_exceptions=True)
            raise
        self._heads[tenant] = batch.new_head
        self._remember_subject_keys(batch.fresh_keys)
        return batch.answers(), linking

    async def _commit_events(
        self,
        events: list[dict[str, Any]],
        preconditions: list[dict[str, Any]],
        first: str,
        in_worker: bool,
    ) -> None:
        """Commit a batch, in the worker process if asked and there is one. If the worker died
        during the commit, the batch's first subject (a fresh decision) says whether it went
        in."""
        worker = self.genesis_worker
        if in_worker and worker is not None and not worker.disabled:
            try:
                await worker.commit_events(events, preconditions)
                return
            except WorkerUnavailable:
                if await self.genesis.stream_events(first):
                    return
        await self.genesis.commit_events(events, preconditions)

    @contextlib.contextmanager
    def _store_call(self, store: str, operation: str) -> Iterator[None]:
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

    async def _link(
        self,
        tenant: str,
        records: list[dict[str, Any]],
        subject_keys: list[list[str]],
        in_worker: bool = True,
    ) -> None:
        with self._store_call("sapixdb", "add_edges"):
            await self.provenance.link(tenant, records, subject_keys, in_worker=in_worker)

    def _start_store(
        self,
        tenant: str,
        stores: list[asyncio.Task[list[str]]],
        in_worker: bool,
        receipts: list[Receipt],
    ) -> None:
        stores.append(asyncio.create_task(self._store_chunk(tenant, receipts, in_worker)))

    async def _store_chunk(
        self, tenant: str, receipts: list[Receipt], in_worker: bool
    ) -> list[str]:
        sealed = [(r.record, r.log_index) for r in receipts]
        with self._store_call("sapixdb", "ingest"):
            return await self.provenance.store(tenant, sealed, in_worker=in_worker)

    async def _discard_stores(self, stores: list[asyncio.Task[list[str]]]) -> None:
        """Tombstone what the chunk writes of a batch that will not be committed wrote."""
        results = await asyncio.gather(*stores, return_exceptions=True)
        await self.provenance.discard(
            [i for result in results if isinstance(result, list) for i in result]
        )

    async def _store_provenance(
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
        for event, sapix_id in zip(index_events, sapix_ids, strict=True):
            event["data"]["sapix_id"] = sapix_id
        return [
            Receipt(r.record, r.log_index, sapix_id)
            for r, sapix_id in zip(receipts, sapix_ids, strict=True)
        ]

    async def _batch(
        self,
        tenant: str,
        head: TenantHead,
        decisions: Sequence[PreparedDecision],
        idempotency_keys: Sequence[tuple[str, int, int]],
        subject_keys: Sequence[Sequence[str]],
        *,
        on_sealed: Callable[[list[Receipt]], None],
        chunk: int,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Receipt], TenantHead]:
        """The events of one batch: ``idempotency_keys`` name which decisions (``[start,
        end)``) each request's key stands for. ``on_sealed`` gets the receipts of every
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
                self._event(
                    decision_subject(tenant, agent, decision_id),
                    DECISION_TYPE,
                    {"record": record, "log_index": log_index},
                )
            )
            events.append(
                self._event(
                    f"{tenant_path(tenant)}/decisions/{decision_id}",
                    INDEX_TYPE,
                    {"agent": agent, "log_index": log_index},
                )
            )
            events.extend(
                self._personal_events(tenant, decision_id, personal, subject_keys[offset])
            )
            if len(receipts) - sealed_until == chunk or len(receipts) == len(decisions):
                on_sealed(receipts[sealed_until:])
                sealed_until = len(receipts)
                await asyncio.sleep(0)  # let that chunk's write start
        frontier = TileFrontier.from_json(head.frontier.to_json())  # a copy to advance
        for tile in frontier.extend(leaves):
            events.append(
                self._event(
                    f"{tenant_path(tenant)}/tiles/{tile.level}/{tile.index}",
                    TILE_TYPE,
                    {"hashes": base64.b64encode(tile.hashes).decode()},
                )
            )
        for agent in dict.fromkeys(str(d.decision["agent"]) for d in decisions):
            next_sequence, last_hash = chains[agent]
            events.append(
                self._event(
                    f"{tenant_path(tenant)}/chains/{quote(agent, safe='')}",
                    CHAIN_HEAD_TYPE,
                    {"chain": agent, "next_sequence": next_sequence, "hash": last_hash},
                )
            )
        start = f"{tenant_path(tenant)}/log/{head.size}"
        batch = {"start": head.size, "count": len(decisions), "frontier": frontier.to_json()}
        events.append(self._event(start, BATCH_TYPE, batch))
        new_head = TenantHead(chains, frontier)
        preconditions = [{"type": "isSubjectNew", "payload": {"subject": start}}]
        for key, first, end in idempotency_keys:
            key_subject = self._idempotency_subject(tenant, key)
            ids = [receipt.record["id"] for receipt in receipts[first:end]]
            events.append(self._event(key_subject, IDEMPOTENCY_TYPE, {"decision_ids": ids}))
            preconditions.append({"type": "isSubjectNew", "payload": {"subject": key_subject}})
        return events, preconditions, receipts, new_head

    def _personal_events(
        self,
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
            self._event(
                f"{tenant_path(tenant)}/personal/{decision_id}",
                PERSONAL_TYPE,
                {"decision_id": decision_id, "values": values},
                erasable=True,
            )
        ]
        for key in dict.fromkeys(subject_keys):
            events.append(
                self._event(
                    f"{self.subject_path(tenant, key)}/decisions/{decision_id}",
                    SUBJECT_LINK_TYPE,
                    {"tenant": tenant, "decision_id": decision_id},
                )
            )
        return events

    @staticmethod
    def _event(
        subject: str, event_type: str, data: dict[str, Any], *, erasable: bool = False
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "source": SOURCE,
            "subject": subject,
            "type": event_type,
            "data": data,
        }
        if erasable:
            event["options"] = {"store_data_as_reference": True}
        return event

    def _idempotency_subject(self, tenant: str, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{tenant_path(tenant)}/idempotency/{digest}"

    async def _idempotent_result(self, tenant: str, key: str) -> list[Receipt] | None:
        events = await self.genesis.stream_events(self._idempotency_subject(tenant, key))
        if not events:
            return None
        ids = to_dict(events[0])["data"]["decision_ids"]
        receipts = []
        for decision_id in ids:
            found = await self.find(tenant, decision_id)
            if found is None:
                raise LedgerError(f"idempotency record names {decision_id}, which is missing")
            receipts.append(found)
        return receipts

    # --- reading -----------------------------------------------------------------------------

    async def find(self, tenant: str, decision_id: str) -> Receipt | None:
        """A tenant's decision by id (None if it is not that tenant's or does not exist)."""
        if not _is_uuid(decision_id):
            return None
        index = await self.genesis.stream_events(f"{tenant_path(tenant)}/decisions/{decision_id}")
        if not index:
            return None
        indexed = to_dict(index[0])["data"]
        agent, sapix_id = str(indexed["agent"]), indexed.get("sapix_id")
        events = await self.genesis.stream_events(decision_subject(tenant, agent, decision_id))
        for event in events:
            data = to_dict(event)
            if data["type"] == DECISION_TYPE:
                log_index = int(data["data"]["log_index"])
                return Receipt(data["data"]["record"], log_index, sapix_id)
        return None

    async def confirm(self, tenant: str, payload: Any, sapix_id: str) -> Receipt | None:
        """The committed decision a SapixDB record stands for, or None for an orphan (or a
        record that differs from what Genesis DB holds)."""
        if not isinstance(payload, dict) or payload.get("tenant") != tenant:
            return None
        found = await self.find(tenant, str(payload.get("decision_id", "")))
        if found is None or found.sapix_id != sapix_id:
            return None
        record = payload.get("record")
        if not isinstance(record, dict) or record.get("hash") != found.record["hash"]:
            return None
        return found

    async def _relink(self, tenant: str, receipt: Receipt) -> None:
        """Write a committed decision's graph edges again if they are missing."""
        decision_id = receipt.record["id"]
        if await self.provenance.is_linked(tenant, decision_id):
            return
        values = await self.personal_values(tenant, decision_id) or []
        keys: list[str] = []
        for value in values:  # an erased subject has no keys left: no edge to it
            if value.path.startswith("data_subjects."):
                keys.extend((await self.subject_keys(tenant, str(value.value)))[-1:])
        await self.provenance.link(tenant, [receipt.record], [keys])

    async def compare_stores(self, tenant: str) -> StoreComparison:
        """Check that SapixDB holds every committed decision of the tenant, unchanged and not
        deleted, and count SapixDB records of the tenant no commit confirms (orphans)."""
        indexed: dict[str, str | None] = {}
        for event in await self.genesis.stream_events(f"{tenant_path(tenant)}/decisions"):
            data = to_dict(event)
            if data["type"] == INDEX_TYPE and isinstance(data["data"], dict):
                indexed[data["subject"].rsplit("/", 1)[-1]] = data["data"].get("sapix_id")
        deleted = await self.provenance.deleted_ids()
        comparison = StoreComparison()
        async for receipt in self.records(tenant):
            comparison.checked += 1
            decision_id = receipt.record["id"]
            sapix_id = indexed.get(decision_id)
            stored = None if sapix_id is None else await self.provenance.get(sapix_id)
            if stored is None or sapix_id in deleted:
                comparison.note(decision_id, "missing_in_sapixdb")
            elif (
                not isinstance(stored.payload, dict)
                or stored.payload.get("record") != receipt.record
            ):
                comparison.note(decision_id, "differs_in_sapixdb")
        return comparison

    async def repair(self, *, grace_ms: int = 60_000, settled: int = 1000) -> int:
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
                    confirmed = await self.confirm(tenant, payload, record.record_id)
                if confirmed is not None and isinstance(tenant, str):
                    confirmed_in_a_row += 1
                    await self._relink(tenant, confirmed)
                elif now_ms - record.timestamp_ms >= grace_ms:
                    orphans.append(record.record_id)
                    confirmed_in_a_row = 0
            before = page[-1].timestamp_hlc
        await self.provenance.discard(orphans)
        return len(orphans)

    async def personal_values(self, tenant: str, decision_id: str) -> list[PersonalValue] | None:
        """The decision's personal values, or None once erased (or if it had none)."""
        events = await self.genesis.stream_events(f"{tenant_path(tenant)}/personal/{decision_id}")
        if not events:
            return None
        data = to_dict(events[0])["data"]
        values = data.get("values") if isinstance(data, dict) else None
        if not isinstance(values, list) or not values or not isinstance(values[0], dict):
            return None
        try:
            restored = [
                PersonalValue(str(v["path"]), v["value"], base64.b64decode(v["salt"]))
                for v in values
            ]
        except (KeyError, ValueError, TypeError):
            return None
        # Erased data keeps its keys with every value "": no salt, no path.
        return None if any(not p.salt or not p.path for p in restored) else restored

    async def records(self, tenant: str) -> AsyncIterator[Receipt]:
        """Every record of a tenant, in log order."""
        for event in await self.genesis.stream_events(f"{tenant_path(tenant)}/agents"):
            data = to_dict(event)["data"]
            if isinstance(data, dict) and "record" in data:
                yield Receipt(data["record"], int(data["log_index"]))

    async def follow(self, tenant: str, after: int | None) -> AsyncIterator[Receipt]:
        """New decisions as they are committed; with ``after``, first those after that log index.

        Replay starts at the batch holding ``after + 1`` (found from the batch events) and
        skips what precedes it, then continues live with no gap at the seam.
        """
        options: dict[str, Any] = {}
        if after is not None:
            bound = await self._replay_bound(tenant, after + 1)
            if bound is not None:
                options = {"lower_bound": bound[0], "include_lower_bound_event": bound[1]}
        async for event in self.genesis.observe_events(f"{tenant_path(tenant)}/agents", options):
            data = to_dict(event)
            if data["type"] != DECISION_TYPE:
                continue
            receipt = Receipt(data["data"]["record"], int(data["data"]["log_index"]))
            if after is not None and receipt.log_index <= after:
                continue
            yield receipt

    async def _replay_bound(self, tenant: str, index: int) -> tuple[str, bool] | None:
        """An event id to replay from so that log index ``index`` is included."""
        batches = [
            to_dict(e) for e in await self.genesis.stream_events(f"{tenant_path(tenant)}/log")
        ]
        earlier = [b for b in batches if int(b["data"]["start"]) + int(b["data"]["count"]) <= index]
        if earlier:
            return str(earlier[-1]["id"]), False  # the batch before: exclusive
        first = await self.genesis.q(
            f"STREAM e FROM events WHERE e.subject UNDER '{tenant_path(tenant)}' LIMIT 1 MAP e.id"
        )
        return (str(first[0]), True) if first else None

    async def tile(self, tenant: str, level: int, index: int) -> bytes | None:
        cached = self._tiles.get((tenant, level, index))
        if cached is not None:
            return cached
        events = await self.genesis.stream_events(f"{tenant_path(tenant)}/tiles/{level}/{index}")
        if not events:
            return None
        hashes = base64.b64decode(to_dict(events[0])["data"]["hashes"])
        self._tiles.put((tenant, level, index), hashes)
        return hashes

    async def _reader(
        self, tenant: str, size: int | None, wanted: Callable[[int], set[tuple[int, int]]]
    ) -> TileReader:
        """A reader of the tenant's tree at ``size`` (default: now) with the tiles it needs."""
        head = await self.head(tenant)
        size = head.size if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= head.size:
            raise LedgerError(f"tree size must be between 0 and {head.size}")
        tiles: dict[tuple[int, int], bytes] = {}
        for level, index in wanted(size):
            if index == head.frontier.unfinished_index(level):
                continue  # the frontier holds it
            tile = await self.tile(tenant, level, index)
            if tile is None:
                raise LedgerError(f"tile {level}/{index} of tenant {tenant!r} is missing")
            tiles[(level, index)] = tile
        return TileReader(size, tiles, head.frontier)

    async def tree_root(self, tenant: str, size: int | None = None) -> tuple[int, bytes]:
        reader = await self._reader(tenant, size, tiles_for_root)
        return reader.size, reader.root()

    async def inclusion_proof(
        self, tenant: str, log_index: int, size: int | None = None
    ) -> tuple[int, list[bytes]]:
        reader = await self._reader(tenant, size, lambda n: tiles_for_inclusion(log_index, n))
        return reader.size, reader.inclusion_proof(log_index)

    async def consistency_proof(
        self, tenant: str, size1: int, size2: int | None = None
    ) -> tuple[int, list[bytes]]:
        reader = await self._reader(tenant, size2, lambda n: tiles_for_consistency(size1, n))
        return reader.size, reader.consistency_proof(size1)

    # --- checkpoints -------------------------------------------------------------------------

    async def checkpoint(self, tenant: str) -> SignedCheckpoint:
        """Sign (and store) a checkpoint of the tenant's log as it is now."""
        size, root = await self.tree_root(tenant)
        body = merkle.Checkpoint(self.checkpoint_origin(tenant), size, root).body()
        note = self.keyring.sign_note(body)
        subject = f"{tenant_path(tenant)}/checkpoints/{size:020d}"
        stored = await self.stored_checkpoint(tenant, size)
        if stored is None:
            issued = {"note": note, "issued_at": format_time(datetime.now(UTC))}
            try:
                await self.genesis.commit_events(
                    [self._event(subject, CHECKPOINT_TYPE, issued)],
                    [{"type": "isSubjectNew", "payload": {"subject": subject}}],
                )
            except PreconditionFailedError:
                stored = await self.stored_checkpoint(tenant, size)  # another writer issued it
        note = stored or note
        if self.on_checkpoint is not None:
            self.on_checkpoint(tenant)
        checkpoint = merkle.parse_checkpoint_body(body)
        return SignedCheckpoint(note, checkpoint.origin, checkpoint.size, checkpoint.root, ())

    async def stored_checkpoint(self, tenant: str, size: int) -> str | None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return None
        events = await self.genesis.stream_events(f"{tenant_path(tenant)}/checkpoints/{size:020d}")
        return None if not events else str(to_dict(events[0])["data"]["note"])

    async def stored_checkpoints(self, tenant: str) -> list[str]:
        """Every checkpoint note issued for the tenant, oldest first."""
        events = await self.genesis.stream_events(f"{tenant_path(tenant)}/checkpoints")
        return [str(to_dict(event)["data"]["note"]) for event in events]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
