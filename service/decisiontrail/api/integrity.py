"""Checkpoints, consistency proofs and verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, ValidationError

from decisiontrail import integrity
from decisiontrail.api.schemas import Checkpoint, Consistency, Verification, documented
from decisiontrail.deps import AuditKey, ReadKey, StateDep
from decisiontrail.errors import Unprocessable
from decisiontrail.verification import CheckpointError

router = APIRouter(tags=["integrity"])


@router.get("/v1/checkpoints/latest", **documented(Checkpoint))
async def latest_checkpoint(key: ReadKey, state: StateDep) -> dict[str, Any]:
    """A signed C2SP checkpoint of the tenant's log as it is now (signed, not stored)."""
    return await integrity.latest_checkpoint(ledger=state.ledger, tenant=key.tenant)


@router.get("/v1/checkpoints/{size}", **documented(Checkpoint))
async def checkpoint_by_size(size: int, key: ReadKey, state: StateDep) -> dict[str, Any]:
    """The signed checkpoint issued at ``size``, if one was."""
    return await integrity.stored_checkpoint(
        ledger=state.ledger, trust=state.keyring.trust, tenant=key.tenant, size=size
    )


@router.get("/v1/proofs/consistency", **documented(Consistency))
async def consistency(
    key: ReadKey,
    state: StateDep,
    from_size: Annotated[int, Query(alias="from", ge=1)],
    to_size: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> dict[str, Any]:
    """A consistency proof from tree size ``from`` to ``to`` (default: now)."""
    return await integrity.consistency_proof(
        ledger=state.ledger, tenant=key.tenant, from_size=from_size, to_size=to_size
    )


class VerifyRequest(BaseModel):
    trusted_checkpoint: str | None = Field(
        None, max_length=100_000, description="a signed checkpoint note the caller trusts"
    )


async def verify_request(request: Request) -> VerifyRequest:
    """The body is optional and read as JSON whatever its Content-Type says: an empty body,
    ``{}`` or a ``curl -d '{}'`` (which sends a form content type) all mean "no trusted
    checkpoint"."""
    raw = await request.body()
    if not raw.strip():
        return VerifyRequest()
    try:
        return VerifyRequest.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()]
        detail = 'the body must be a JSON object, like {} or {"trusted_checkpoint": "<note>"}'
        raise Unprocessable(detail, errors=errors) from None


@router.post(
    "/v1/verify",
    **documented(Verification),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": VerifyRequest.model_json_schema()}},
        }
    },
)
async def verify(
    key: AuditKey, state: StateDep, body: Annotated[VerifyRequest, Depends(verify_request)]
) -> dict[str, Any]:
    """Check every record, chain, signature and checkpoint of the tenant's log, and that both
    stores hold the same decisions."""
    try:
        answer = await integrity.verify_tenant(
            ledger=state.ledger, trust=state.keyring.trust, tenant=key.tenant,
            trusted_note=body.trusted_checkpoint or None,
        )  # fmt: skip
    except CheckpointError as exc:
        raise Unprocessable(f"the trusted checkpoint does not verify: {exc}") from None
    state.metrics.verifications.labels("ok" if answer["ok"] else "failed").inc()
    return answer
