"""Data subjects: GDPR erasure and legal holds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from decisiontrail import erasure
from decisiontrail.api.schemas import ErasureReceipt, LegalHoldState, documented
from decisiontrail.apikeys import ApiKey, Scope
from decisiontrail.deps import StateDep, require

router = APIRouter(prefix="/v1/data-subjects", tags=["data subjects"])
EraseKey = Annotated[ApiKey, Depends(require(Scope.ERASE))]
SubjectId = Annotated[str, Path(min_length=1, max_length=200)]


@router.delete("/{subject_id}", **documented(ErasureReceipt))
async def erase(subject_id: SubjectId, key: EraseKey, state: StateDep) -> dict[str, Any]:
    """Erase every personal value about the data subject; returns a signed receipt."""
    return await erasure.erase_subject(
        ledger=state.ledger, keyring=state.keyring, metrics=state.metrics, tenant=key.tenant,
        subject_id=subject_id,
    )  # fmt: skip


@router.put("/{subject_id}/legal-hold", **documented(LegalHoldState))
async def place_hold(subject_id: SubjectId, key: EraseKey, state: StateDep) -> dict[str, bool]:
    """Refuse erasure of this subject until the hold is released."""
    await erasure.set_legal_hold(
        ledger=state.ledger, tenant=key.tenant, subject_id=subject_id, placed=True
    )
    return {"legal_hold": True}


@router.delete("/{subject_id}/legal-hold", **documented(LegalHoldState))
async def release_hold(subject_id: SubjectId, key: EraseKey, state: StateDep) -> dict[str, bool]:
    await erasure.set_legal_hold(
        ledger=state.ledger, tenant=key.tenant, subject_id=subject_id, placed=False
    )
    return {"legal_hold": False}


holds_router = APIRouter(prefix="/v1/legal-holds", tags=["data subjects"])


class HeldSubject(BaseModel):
    subject_key: str = Field(description="the data subject's random key (never their id)")
    placed_at: str = Field(description="RFC 3339")


class LegalHolds(BaseModel):
    data: list[HeldSubject]


@holds_router.get("", response_model=LegalHolds)
async def list_holds(key: EraseKey, state: StateDep) -> LegalHolds:
    """The legal holds in force in the tenant."""
    holds = await erasure.legal_holds(ledger=state.ledger, tenant=key.tenant)
    return LegalHolds(data=[HeldSubject(**hold) for hold in holds])
