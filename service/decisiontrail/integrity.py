"""Verifying a tenant's trail end to end, for the ``/v1/verify`` route and the CLI."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

from decisiontrail.errors import NotFound, Unprocessable, UntrustedCheckpoint
from decisiontrail.ledger import Ledger, LedgerError
from decisiontrail.ledger.repair import StoreComparer
from decisiontrail.signing import TrustRoot
from decisiontrail.verification import (
    CheckpointError,
    LogVerifier,
    SignedCheckpoint,
    open_checkpoint,
    verify_off_loop,
)
from ledgerstore import merkle


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def latest_checkpoint(*, ledger: Ledger, tenant: str) -> dict[str, Any]:
    """A signed checkpoint of the tenant's log as the store holds it now (signed, not stored),
    its root in base64 (the C2SP note's form) and in hex (the form people compare)."""
    checkpoint = await current_checkpoint(ledger=ledger, tenant=tenant)
    return {"origin": checkpoint.origin, "size": checkpoint.size, "root": _b64(checkpoint.root),
            "root_hex": checkpoint.root.hex(), "note": checkpoint.note}  # fmt: skip


async def stored_checkpoint(
    *, ledger: Ledger, trust: TrustRoot, tenant: str, size: int
) -> dict[str, Any]:
    """The checkpoint issued at ``size``; one whose key is no longer trusted is reported."""
    note = await ledger.tree.stored_checkpoint(tenant, size)
    if note is None:
        raise NotFound(f"no checkpoint was issued at size {size}")
    try:
        opened = open_checkpoint(note, trust)
    except CheckpointError as exc:  # e.g. signed by a key since removed from the trust root
        raise UntrustedCheckpoint(f"the checkpoint at size {size} does not verify: {exc}") from None
    return {"origin": opened.origin, "size": opened.size, "root": _b64(opened.root),
            "root_hex": opened.root.hex(), "note": note}  # fmt: skip


async def consistency_proof(
    *, ledger: Ledger, tenant: str, from_size: int, to_size: int | None
) -> dict[str, Any]:
    """A consistency proof between two sizes of the tenant's log (``to_size``: now)."""
    size, old_root, new_root, proof = await consistency(
        ledger=ledger, tenant=tenant, from_size=from_size, to_size=to_size
    )
    return {"from": from_size, "to": size, "from_root": _b64(old_root), "to_root": _b64(new_root),
            "from_root_hex": old_root.hex(), "to_root_hex": new_root.hex(),
            "proof": [_b64(h) for h in proof]}  # fmt: skip


async def _compared(
    ledger: Ledger, tenant: str, comparer: StoreComparer
) -> AsyncIterator[tuple[dict[str, Any], int]]:
    """The tenant's log, each record handed to ``comparer`` as it goes by."""
    async for receipt in ledger.reads.records(tenant):
        await comparer.add(receipt)
        yield receipt.record, receipt.log_index


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
    origin = ledger.tree.checkpoint_origin(tenant)
    trusted = open_checkpoint(trusted_note, trust, origin) if trusted_note else None
    checkpoints = []
    for note in await ledger.tree.stored_checkpoints(tenant):
        try:
            checkpoints.append(open_checkpoint(note, trust, origin))
        except CheckpointError as exc:
            return {
                "ok": False,
                "first_problem": {"reason": "bad_checkpoint", "record_id": None,
                                  "sequence": None, "detail": str(exc)},
            }  # fmt: skip
    verifier = LogVerifier(tenant, trust, checkpoints, trusted)
    # One read of the log for both: the verifier's checks and the comparison with SapixDB.
    comparer = await ledger.repair.comparer(tenant)
    receipts = _compared(ledger, tenant, comparer)
    await verify_off_loop(verifier, receipts, progress=progress)
    async for _ in receipts:  # the verifier stopped at a problem: compare the rest too
        pass
    stores = await comparer.finish()
    report = verifier.finish()
    answer = report.to_json()
    answer["stores"] = stores.to_json()
    if report.ok:
        # The log verifies on its own; the store's other records of its length must agree.
        chains = {name: (c.expected, c.prev_hash) for name, c in verifier.chains.items()}
        disagreements = await ledger.bookkeeping.disagreements(
            tenant, size=report.records_checked, chains=chains
        )
        answer["bookkeeping"] = [{"reason": d.reason, "detail": d.detail} for d in disagreements]
        if disagreements:
            answer["ok"] = False
            answer["first_problem"] = {
                "reason": disagreements[0].reason,
                "record_id": None,
                "sequence": None,
                "detail": disagreements[0].detail,
            }
            return answer
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


async def current_checkpoint(*, ledger: Ledger, tenant: str) -> SignedCheckpoint:
    """A signed checkpoint of the tenant's log as it is now (signed on demand, not stored)."""
    return await ledger.tree.checkpoint(tenant)


async def stored_checkpoints(
    *, ledger: Ledger, trust: TrustRoot, tenant: str
) -> list[SignedCheckpoint]:
    """Every checkpoint issued for the tenant, oldest first, each opened with the trust root
    (one that does not verify raises :class:`CheckpointError`)."""
    origin = ledger.tree.checkpoint_origin(tenant)
    return [
        open_checkpoint(note, trust, origin)
        for note in await ledger.tree.stored_checkpoints(tenant)
    ]


async def consistency(
    *, ledger: Ledger, tenant: str, from_size: int, to_size: int | None
) -> tuple[int, bytes, bytes, list[bytes]]:
    """(to size, root at ``from_size``, root at it, the RFC 9162 consistency proof); sizes
    the log does not have are :class:`Unprocessable`."""
    if to_size is not None and from_size > to_size:
        raise Unprocessable(f"from ({from_size}) must not be larger than to ({to_size})")
    try:
        size, proof = await ledger.tree.consistency_proof(tenant, from_size, to_size)
        _, old_root = await ledger.tree.tree_root(tenant, from_size)
        _, new_root = await ledger.tree.tree_root(tenant, size)
    except (LedgerError, ValueError, merkle.MerkleError) as exc:
        raise Unprocessable(str(exc)) from None
    return size, old_root, new_root, list(proof)
