from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette.sse import EventSourceResponse

from decisiontrail import decisions
from decisiontrail.api.schemas import (
    BatchReceipt,
    Decision,
    DecisionPage,
    DecisionReceipt,
    InclusionProof,
    Provenance,
    documented,
)
from decisiontrail.apikeys import ApiKey, Scope
from decisiontrail.deps import IngestKey, ReadKey, StateDep
from decisiontrail.errors import Forbidden, Unprocessable
from decisiontrail.models import DecisionCreate, DecisionKind
from decisiontrail.provenance import ListFilter

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Name = Annotated[str | None, Query(min_length=1, max_length=200)]
AsOf = Annotated[
    datetime | None, Query(description="time travel: the trail as it was at this time")
]


def _personal_allowed(key: ApiKey, personal: bool) -> bool:
    """``personal=true`` from a key that may not read personal values is refused, not
    silently answered with commitments."""
    if personal and not key.allows(Scope.READ_PERSONAL):
        raise Forbidden("personal=true needs the 'read-personal' scope (without it, leave it "
                        "out: personal values then stay commitments)")  # fmt: skip
    return personal


@router.post("", status_code=201, **documented(DecisionReceipt, 201))
async def record_one(
    decision: DecisionCreate,
    key: IngestKey,
    state: StateDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Record one decision; answers once it is durably stored, signed and chained."""
    receipts = await decisions.record_decisions(
        ledger=state.ledger, metrics=state.metrics, tenant=key.tenant, decisions=[decision],
        idempotency_key=idempotency_key, endpoint="single",
    )  # fmt: skip
    return receipts[0].to_json()


@router.post("/batch", status_code=201, **documented(BatchReceipt, 201))
async def record_batch(
    batch: list[DecisionCreate],
    key: IngestKey,
    state: StateDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Record up to the configured batch size of decisions atomically."""
    if not batch:
        raise Unprocessable("the batch is empty")
    if len(batch) > state.settings.max_batch_size:
        raise Unprocessable(f"a batch holds at most {state.settings.max_batch_size} decisions")
    receipts = await decisions.record_decisions(
        ledger=state.ledger, metrics=state.metrics, tenant=key.tenant, decisions=batch,
        idempotency_key=idempotency_key, endpoint="batch",
    )  # fmt: skip
    return {"data": [r.to_json() for r in receipts], "count": len(receipts)}


@router.get("", **documented(DecisionPage))
async def list_decisions(
    key: ReadKey,
    state: StateDep,
    agent: Name = None,
    model: Name = None,
    action: Name = None,
    kind: DecisionKind | None = None,
    session: Name = None,
    data_subject: Name = None,
    tag: Name = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    as_of: AsOf = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=decisions.MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """The tenant's decisions, newest first, filtered (every filter must match), a page at
    a time: pass ``next_cursor`` back as ``cursor`` for the next page."""
    where = ListFilter(
        agent=agent, model=model, action=action, kind=None if kind is None else kind.value,
        session=session, tag=tag,
        since=None if since is None else decisions.record_time(since),
        until=None if until is None else decisions.record_time(until),
    )  # fmt: skip
    return await decisions.list_decisions(
        ledger=state.ledger, tenant=key.tenant, where=where, data_subject=data_subject,
        cursor=cursor, as_of=as_of, limit=limit,
    )  # fmt: skip


@router.get("/stream", response_model=None)
async def stream(
    key: ReadKey,
    state: StateDep,
    after: Annotated[int | None, Query(ge=-1, description="resume after this log index")] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> EventSourceResponse:
    """New decisions as Server-Sent Events (``id`` is the log index, for resuming)."""
    if after is None and last_event_id is not None and last_event_id.isdigit():
        after = int(last_event_id)

    events = decisions.follow_decisions(
        ledger=state.ledger, tenant=key.tenant, after=after, agent=agent, kind=kind
    )
    return EventSourceResponse(events, ping=15)


@router.get("/{decision_id}", **documented(Decision))
async def get_one(
    decision_id: str,
    key: ReadKey,
    state: StateDep,
    personal: Annotated[bool, Query(description="include personal values (read-personal)")] = False,
    as_of: AsOf = None,
) -> dict[str, Any]:
    """A decision's sealed record; personal values only for keys allowed to read them."""
    return await decisions.get_decision(
        ledger=state.ledger, tenant=key.tenant, decision_id=decision_id,
        with_personal=_personal_allowed(key, personal), as_of=as_of,
    )  # fmt: skip


@router.get("/{decision_id}/provenance", **documented(Provenance))
async def provenance(
    decision_id: str,
    key: ReadKey,
    state: StateDep,
    personal: Annotated[bool, Query(description="include personal values (read-personal)")] = False,
) -> dict[str, Any]:
    """The decision's run tree, session, agent, model, data subjects, human oversight and an
    inclusion proof against a fresh signed checkpoint."""
    return await decisions.decision_provenance(
        ledger=state.ledger, tenant=key.tenant, decision_id=decision_id,
        with_personal=_personal_allowed(key, personal),
    )  # fmt: skip


@router.get("/{decision_id}/proof", **documented(InclusionProof))
async def inclusion_proof(decision_id: str, key: ReadKey, state: StateDep) -> dict[str, Any]:
    """An inclusion proof of the decision against the newest signed checkpoint."""
    return await decisions.inclusion_proof(
        ledger=state.ledger, tenant=key.tenant, decision_id=decision_id
    )
