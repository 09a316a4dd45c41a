"""Verifying a tenant's trail end to end, for the ``/v1/verify`` route and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from decisiontrail.errors import Unprocessable
from decisiontrail.ledger import Ledger, LedgerError
from decisiontrail.signing import TrustRoot
from decisiontrail.verification import (
    CheckpointError,
    LogVerifier,
    SignedCheckpoint,
    open_checkpoint,
)
from ledgerstore import merkle


async def verify_tenant(
    *,
    ledger: Ledger,
    trust: TrustRoot,
    tenant: str,
    trusted_note: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Check every record's hash, chain link and signature, the Merkle root against every
    stored checkpoint and against ``trusted_note`` (which catches a cut tail or a rolled-back
    database), and that SapixDB and Genesis DB hold the same decisions.

    Raises :class:`CheckpointError` if ``trusted_note`` does not verify; a stored checkpoint
    that does not verify is reported as the problem. ``progress`` is told how many records
    were checked, as the check goes (the console shows it).
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
        if progress is not None:
            progress(receipt.log_index + 1)
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


async def latest_checkpoint(*, ledger: Ledger, tenant: str) -> SignedCheckpoint:
    """A signed checkpoint of the tenant's log as it is now (issued on demand)."""
    return await ledger.checkpoint(tenant)


async def stored_checkpoints(
    *, ledger: Ledger, trust: TrustRoot, tenant: str
) -> list[SignedCheckpoint]:
    """Every checkpoint issued for the tenant, oldest first, each opened with the trust root
    (one that does not verify raises :class:`CheckpointError`)."""
    origin = ledger.checkpoint_origin(tenant)
    return [
        open_checkpoint(note, trust, origin) for note in await ledger.stored_checkpoints(tenant)
    ]


async def consistency(
    *, ledger: Ledger, tenant: str, from_size: int, to_size: int | None
) -> tuple[int, bytes, bytes, list[bytes]]:
    """(to size, root at ``from_size``, root at it, the RFC 9162 consistency proof); sizes
    the log does not have are :class:`Unprocessable`."""
    if to_size is not None and from_size > to_size:
        raise Unprocessable(f"from ({from_size}) must not be larger than to ({to_size})")
    try:
        size, proof = await ledger.consistency_proof(tenant, from_size, to_size)
        _, old_root = await ledger.tree_root(tenant, from_size)
        _, new_root = await ledger.tree_root(tenant, size)
    except (LedgerError, ValueError, merkle.MerkleError) as exc:
        raise Unprocessable(str(exc)) from None
    return size, old_root, new_root, list(proof)
