"""Verifying a tenant's trail end to end, for the ``/v1/verify`` route and the CLI."""

from __future__ import annotations

from typing import Any

from decisiontrail.ledger import Ledger
from decisiontrail.signing import TrustRoot
from decisiontrail.verification import CheckpointError, LogVerifier, open_checkpoint


async def verify_tenant(
    *, ledger: Ledger, trust: TrustRoot, tenant: str, trusted_note: str | None = None
) -> dict[str, Any]:
    """Check every record's hash, chain link and signature, the Merkle root against every
    stored checkpoint and against ``trusted_note`` (which catches a cut tail or a rolled-back
    database), and that SapixDB and Genesis DB hold the same decisions.

    Raises :class:`CheckpointError` if ``trusted_note`` does not verify; a stored checkpoint
    that does not verify is reported as the problem.
    """
    origin = ledger.checkpoint_origin(tenant)
    trusted = open_checkpoint(trusted_note, trust, origin) if trusted_note else None
    checkpoints = []
    for note in await ledger.stored_checkpoints(tenant):
        try:
            checkpoints.append(open_checkpoint(note, trust, origin))
        except CheckpointError as exc:
            return {
                "ok": False,
                "first_problem": {"reason": "bad_checkpoint", "record_id": None,
                                  "sequence": None, "detail": str(exc)},
            }  # fmt: skip
    verifier = LogVerifier(tenant, trust, checkpoints, trusted)
    async for receipt in ledger.records(tenant):
        if not verifier.add(receipt.record, receipt.log_index):
            break
    report = verifier.finish()
    stores = await ledger.compare_stores(tenant)
    answer = report.to_json()
    answer["stores"] = stores.to_json()
    if report.ok and stores.mismatches:
        # The log itself verifies, but the two stores disagree: name the first decision.
        answer["ok"] = False
        answer["first_problem"] = {
            "reason": stores.first_reason,
            "record_id": stores.first_decision_id,
            "sequence": None,
            "detail": "SapixDB and Genesis DB do not hold the same decision",
        }
    return answer
