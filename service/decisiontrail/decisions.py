"""The decision service: keyword-only functions the routes (and the CLI) call. No HTTP here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from decisiontrail.canonical import CanonicalizationError, canonical_json
from decisiontrail.errors import BadIdempotencyKey, NotFound, StoreUnavailable, Unprocessable
from decisiontrail.ledger import Ledger, PreparedDecision, Receipt
from decisiontrail.metrics import Metrics
from decisiontrail.models import DecisionCreate
from decisiontrail.provenance import PARENT_RUN, RUN, SESSION, ListFilter, decision_id_of, node
from decisiontrail.records import format_time, restore_personal
from decisiontrail.tracing import current_trace_ids, tracer
from genesisdb import GenesisDBError
from sapixdb import Record, SapixError
from sapixdb.hlc import to_hlc

MAX_PAGE = 500
MAX_RELATED = 200  # decisions listed per run tree or session in a provenance answer


def prepare(decision: DecisionCreate, trace_ids: tuple[str, str] | None = None) -> PreparedDecision:
    """The client's envelope as plain JSON (defaults left out), checked to be canonicalizable.

    A decision that names no trace is recorded with ``trace_ids``: the request's trace and
    span ids.
    """
    body = decision.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    body["agent"], body["action"] = decision.agent, decision.action
    body.pop("personal", None)
    if trace_ids is not None and "trace_id" not in body:
        body["trace_id"], body["span_id"] = trace_ids
    try:
        canonical_json(body)
    except CanonicalizationError as exc:
        raise Unprocessable(str(exc)) from None
    return PreparedDecision(body, list(decision.personal))


IDEMPOTENCY_KEY_CHARACTERS = frozenset(chr(c) for c in range(0x20, 0x7F))  # visible ASCII
MAX_IDEMPOTENCY_KEY = 200


def idempotency_key_value(header: str | None) -> str | None:
    """The key an ``Idempotency-Key`` header carries (IETF draft: a structured-field string,
    so surrounding quotes are dropped), or None without the header. An empty or malformed
    key is refused (400), never taken as a key."""
    if header is None:
        return None
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not set(key) <= IDEMPOTENCY_KEY_CHARACTERS:
        raise BadIdempotencyKey(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )
    return key


def request_hash(decisions: Sequence[DecisionCreate]) -> str:
    """A hash of the client's request body as canonical JSON (what a retry must repeat)."""
    body = [d.model_dump(mode="json", exclude_none=True) for d in decisions]
    return hashlib.sha256(canonical_json(body)).hexdigest()


async def record_decisions(
    *,
    ledger: Ledger,
    metrics: Metrics,
    tenant: str,
    decisions: Sequence[DecisionCreate],
    idempotency_key: str | None,
    endpoint: str,
) -> list[Receipt]:
    """Record decisions; ``idempotency_key`` is the raw header value (None without one).
    A replay of an earlier request with the same key answers its receipts (``replayed``)
    and is not counted as new decisions."""
    started = time.perf_counter()
    key = idempotency_key_value(idempotency_key)
    request_trace = current_trace_ids()  # the request's span, not the validate span below
    with tracer.start_as_current_span("decision.validate") as span:
        span.set_attribute("decisiontrail.decisions", len(decisions))
        prepared = [prepare(decision, request_trace) for decision in decisions]
    body_hash = None if key is None else request_hash(decisions)
    try:
        receipts = await ledger.writer.record(
            tenant, prepared, idempotency_key=key, body_hash=body_hash
        )
    except (GenesisDBError, SapixError) as exc:  # timed and counted by the ledger
        raise StoreUnavailable(f"the decision was not recorded ({type(exc).__name__})") from None
    metrics.ingest_latency.labels(endpoint).observe(time.perf_counter() - started)
    if receipts and receipts[0].replayed:
        return receipts
    for decision in decisions:
        agent = metrics.agent_label(decision.agent)
        metrics.decisions.labels(agent, decision.kind.value).inc()
    return receipts


async def get_decision(
    *,
    ledger: Ledger,
    tenant: str,
    decision_id: str,
    with_personal: bool,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    receipt = await ledger.reads.find(tenant, decision_id)
    if receipt is None or (
        as_of is not None and receipt.record["recorded_at"] > record_time(as_of)
    ):
        raise NotFound(f"no decision {decision_id}")
    record = dict(receipt.record)
    if with_personal:
        values = await ledger.reads.personal_values(tenant, decision_id)
        if values is not None:
            record["decision"] = restore_personal(record["decision"], values)
        record["personal_erased"] = values is None
    return {"record": record, "log_index": receipt.log_index}


def record_time(moment: datetime) -> str:
    """A time spelled as records spell ``recorded_at`` (a naive time means UTC)."""
    return format_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _summary(receipt: Receipt) -> dict[str, Any]:
    record, decision = receipt.record, receipt.record["decision"]
    summary = {
        "id": record["id"],
        "agent": record["chain"],
        "sequence": record["sequence"],
        "action": decision["action"],
        "kind": decision.get("kind", "custom"),
        "run_id": decision.get("run_id"),
        "parent_run_id": decision.get("parent_run_id"),
        "recorded_at": record["recorded_at"],
        "log_index": receipt.log_index,
    }
    return {key: value for key, value in summary.items() if value is not None}


def encode_cursor(hlc: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{hlc}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, value = text.partition(":")
        if version != "v1" or not value.isdigit():
            raise ValueError
        return to_hlc(int(value))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Unprocessable("the cursor is not one this service issued") from None


async def list_decisions(
    *,
    ledger: Ledger,
    tenant: str,
    where: ListFilter,
    data_subject: str | None = None,
    cursor: str | None = None,
    as_of: datetime | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of the tenant's decisions, newest first, each confirmed against Genesis DB.

    The cursor is the SapixDB timestamp of the last decision returned; ``as_of`` hides what
    was recorded after that time (time travel).
    """
    if not 1 <= limit <= MAX_PAGE:
        raise Unprocessable(f"limit must be between 1 and {MAX_PAGE}")
    if data_subject is not None:
        ids = await ledger.subjects.subject_decisions(tenant, data_subject)
        if not ids:
            return {"data": [], "next_cursor": None}
        where = replace(where, decision_ids=frozenset(ids))
    bounds = [] if cursor is None else [decode_cursor(cursor)]
    if as_of is not None:
        bounds.append(to_hlc(as_of) + 1)
    before = min(bounds) if bounds else None
    found: list[tuple[Receipt, int]] = []
    try:
        while len(found) < limit:
            page = await ledger.provenance.page(tenant, where, before_hlc=before, limit=limit)
            for record in page:
                receipt = await ledger.reads.confirm(tenant, record.payload, record.record_id)
                if receipt is not None and len(found) < limit:
                    found.append((receipt, record.timestamp_hlc))
            if len(page) < limit:
                break
            before = page[-1].timestamp_hlc
    except SapixError as exc:
        raise _read_failure(exc) from None
    next_cursor = encode_cursor(found[-1][1]) if len(found) == limit else None
    data = [
        {"record": r.record, "log_index": r.log_index, "sapix_id": r.sapix_id} for r, _ in found
    ]
    return {"data": data, "next_cursor": next_cursor}


def follow_decisions(
    *, ledger: Ledger, tenant: str, after: int | None, agent: str | None, kind: str | None
) -> AsyncIterator[dict[str, str]]:
    """New decisions of the tenant as Server-Sent Events as they are committed (after log
    index ``after`` first; ``id`` is the log index, for resuming), each its receipt with its
    sealed decision, filtered by agent and kind: the API's stream and the console's live list.
    Refused (503, ``Retry-After``) while as many streams are open as the service allows."""
    ledger.feed.check_capacity()  # now, before the response starts

    async def events() -> AsyncIterator[dict[str, str]]:
        async for receipt in ledger.feed.follow(tenant, after):
            decision = receipt.record["decision"]
            if agent is not None and decision.get("agent") != agent:
                continue
            if kind is not None and decision.get("kind", "custom") != kind:
                continue
            body = {**receipt.to_json(), "decision": decision}
            yield {"event": "decision", "id": str(receipt.log_index), "data": json.dumps(body)}

    return events()


async def inclusion_proof(*, ledger: Ledger, tenant: str, decision_id: str) -> dict[str, Any]:
    """An inclusion proof of a decision against a checkpoint of the log as it is now."""
    found = await get_decision(
        ledger=ledger, tenant=tenant, decision_id=decision_id, with_personal=False
    )
    checkpoint = await ledger.tree.checkpoint(tenant)
    index = int(found["log_index"])
    _, proof = await ledger.tree.inclusion_proof(tenant, index, checkpoint.size)
    return {
        "decision_id": decision_id,
        "log_index": index,
        "tree_size": checkpoint.size,
        "root": base64.b64encode(checkpoint.root).decode(),
        "root_hex": checkpoint.root.hex(),
        "proof": [base64.b64encode(h).decode() for h in proof],
        "checkpoint": checkpoint.note,
    }


def _read_failure(exc: SapixError) -> Exception:
    if exc.status is not None and 400 <= exc.status < 500:
        return Unprocessable(exc.message)
    return StoreUnavailable("SapixDB did not answer the query; retry")


async def _committed(ledger: Ledger, tenant: str, decision_ids: Iterable[str]) -> list[Receipt]:
    """The committed decisions among ``decision_ids`` (a graph may name uncommitted ones),
    in log order, read from Genesis DB."""
    out: list[Receipt] = []
    for decision_id in list(dict.fromkeys(decision_ids))[:MAX_RELATED]:
        receipt = await ledger.reads.find(tenant, decision_id)
        if receipt is not None:
            out.append(receipt)
    return sorted(out, key=lambda r: r.log_index)


def _decisions_in(nodes: Sequence[Record], tenant: str) -> list[str]:
    ids = [decision_id_of(n.record_id, tenant) for n in nodes]
    return [i for i in ids if i is not None]


async def _members(ledger: Ledger, tenant: str, group: str, edge_type: str) -> list[Receipt]:
    return await _committed(
        ledger, tenant, await ledger.provenance.members(tenant, group, edge_type)
    )


async def decision_provenance(
    *, ledger: Ledger, tenant: str, decision_id: str, with_personal: bool
) -> dict[str, Any]:
    """Where a decision came from and what followed: its run tree (ancestor and descendant
    runs with their decisions), session, agent, model and parameters, data subjects, human
    oversight, and an inclusion proof against a fresh signed checkpoint."""
    found = await get_decision(
        ledger=ledger, tenant=tenant, decision_id=decision_id, with_personal=with_personal
    )
    record: dict[str, Any] = found["record"]
    decision = record["decision"]
    receipt = await ledger.reads.find(tenant, decision_id)
    assert receipt is not None  # get_decision found it
    run_id, parent_run_id = decision.get("run_id"), decision.get("parent_run_id")
    try:
        ancestors: list[dict[str, Any]] = []
        start = run_id or parent_run_id
        if start is not None:
            tree = await ledger.provenance.tree(node("run", tenant, start), "outbound")
            runs = [n.record_id for n in tree.nodes if n.record_id.startswith("run:")]
            for run in runs:
                if run == node("run", tenant, run_id or ""):
                    continue  # the decision's own run: its siblings are listed below
                members = await _members(ledger, tenant, run, RUN)
                summaries = [_summary(m) for m in members]
                ancestors.append({"run_id": run.split(":", 2)[2], "decisions": summaries})
        descendants: list[Receipt] = []
        same_run: list[Receipt] = []
        if run_id is not None:
            run_node = node("run", tenant, run_id)
            tree = await ledger.provenance.tree(run_node, "inbound")
            below = await _committed(ledger, tenant, _decisions_in(tree.nodes, tenant))
            descendants = [r for r in below if r.record["decision"].get("run_id") != run_id]
            same_run = await _members(ledger, tenant, run_node, RUN)
        elif parent_run_id is not None:
            parent = node("run", tenant, parent_run_id)
            same_run = await _members(ledger, tenant, parent, PARENT_RUN)
        in_session: list[Receipt] = []
        if decision.get("session_id") is not None:
            group = node("session", tenant, decision["session_id"])
            in_session = await _members(ledger, tenant, group, SESSION)
    except SapixError as exc:
        raise _read_failure(exc) from None
    related = {r.record["id"]: r for r in [*same_run, *descendants, *in_session]}
    reviews = [
        _summary(r) | {"oversight": r.record["decision"].get("oversight")}
        for r in related.values()
        if r.record["decision"].get("kind") == "human_review" and r.record["id"] != decision_id
    ]
    size, proof = await ledger.tree.inclusion_proof(tenant, receipt.log_index)
    checkpoint = await ledger.tree.checkpoint(tenant)
    if checkpoint.size != size:
        _, proof = await ledger.tree.inclusion_proof(tenant, receipt.log_index, checkpoint.size)
    subjects = decision.get("data_subjects") or []
    return {
        "decision": record,
        "log_index": receipt.log_index,
        "agent": {"id": record["chain"], "sequence": record["sequence"]},
        "model": decision.get("model"),
        "run": {
            "run_id": run_id,
            "parent_run_id": parent_run_id,
            "ancestors": ancestors,
            "siblings": [_summary(r) for r in same_run if r.record["id"] != decision_id],
            "descendants": [_summary(r) for r in sorted(descendants, key=lambda r: r.log_index)],
        },
        "session": None
        if decision.get("session_id") is None
        else {"id": decision["session_id"], "decisions": [_summary(r) for r in in_session]},
        "data_subjects": {"count": len(subjects), "ids": subjects if with_personal else None},
        "oversight": {"own": decision.get("oversight"), "reviews": reviews},
        "inclusion_proof": {
            "log_index": receipt.log_index,
            "tree_size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root).decode(),
            "root_hex": checkpoint.root.hex(),  # as people read roots everywhere
            "proof": [base64.b64encode(h).decode() for h in proof],
            "checkpoint": checkpoint.note,
        },
    }
