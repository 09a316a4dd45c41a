"""Data subjects: GDPR erasure and legal holds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from decisiontrail import erasure
from decisiontrail.apikeys import ApiKey, Scope
from decisiontrail.deps import StateDep, require

router = APIRouter(prefix="/v1/data-subjects", tags=["data subjects"])
EraseKey = Annotated[ApiKey, Depends(require(Scope.ERASE))]
SubjectId = Annotated[str, Path(min_length=1, max_length=200)]


@router.delete("/{subject_id}")
async def erase(subject_id: SubjectId, key: EraseKey, state: StateDep) -> dict[str, Any]:
    """Erase every personal value about the data subject; returns a signed receipt."""
    return await erasure.erase_subject(
        ledger=state.ledger, keyring=state.keyring, metrics=state.metrics, tenant=key.tenant,
        subject_id=subject_id,
    )  # fmt: skip


@router.put("/{subject_id}/legal-hold")
async def place_hold(subject_id: SubjectId, key: EraseKey, state: StateDep) -> dict[str, bool]:
    """Refuse erasure of this subject until the hold is released."""
    await erasure.set_legal_hold(
        ledger=state.ledger, tenant=key.tenant, subject_id=subject_id, placed=True
    )
    return {"legal_hold": True}


@router.delete("/{subject_id}/legal-hold")
async def release_hold(subject_id: SubjectId, key: EraseKey, state: StateDep) -> dict[str, bool]:
    await erasure.set_legal_hold(
        ledger=state.ledger, tenant=key.tenant, subject_id=subject_id, placed=False
    )
    return {"legal_hold": False}
