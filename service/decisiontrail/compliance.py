"""Building a compliance report from a tenant's log, and signing it.

The report covers decisions recorded in [period_from, period_to) (optionally one agent). It
carries the signed checkpoints at both ends of the period (the newest issued at or before each
end; one is issued now if the period reaches the present), the consistency proof between them
and the result of verifying the whole log. Its JSON form, canonicalized with RFC 8785, is what
the service signs.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from decisiontrail.canonical import canonical_json
from decisiontrail.erasure import ERASURE_ACTION, ERASURE_AGENT
from decisiontrail.ledger import Ledger
from decisiontrail.records import format_time, parse_time
from decisiontrail.report_model import (
    CheckpointSummary,
    ComplianceReport,
    Count,
    ErasureSummary,
    KeyRotation,
)
from decisiontrail.signing import REPORT_DOMAIN, Keyring, PublicKey, TrustRoot
from decisiontrail.verification import (
    CheckpointError,
    SignedCheckpoint,
    open_checkpoint,
    verify_records,
)
from ledgerstore import merkle

BUCKETS = [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)]


def _counts(counter: Counter[str]) -> list[Count]:
    return [Count(label, n) for label, n in counter.most_common()]


def _bucket(confidence: Any) -> str:
    if not isinstance(confidence, int | float) or isinstance(confidence, bool):
        return "none"
    return BUCKETS[min(9, max(0, int(confidence * 10)))]


def _is_error(decision: dict[str, Any]) -> bool:
    tags = decision.get("tags") or []
    metadata = decision.get("metadata") or {}
    return "error" in tags or (isinstance(metadata, dict) and "error" in metadata)


async def build_report(
    *,
    ledger: Ledger,
    keyring: Keyring,
    tenant: str,
    period_from: datetime,
    period_to: datetime,
    agent: str | None,
    retention_days: int,
) -> ComplianceReport:
    now = datetime.now(UTC)
    by: dict[str, Counter[str]] = {k: Counter() for k in ("agent", "model", "action", "kind")}
    confidence: Counter[str] = Counter({label: 0 for label in [*BUCKETS, "none"]})
    total = reviewed = overridden = errors = 0
    erasures: list[ErasureSummary] = []
    oldest: str | None = None
    records = []
    size_at_start = size_at_end = 0
    async for receipt in ledger.reads.records(tenant):
        record = receipt.record
        records.append(record)
        moment = parse_time(record["recorded_at"])
        oldest = oldest or record["recorded_at"]
        if moment < period_from:
            size_at_start = receipt.log_index + 1
        if moment < period_to:
            size_at_end = receipt.log_index + 1
        decision = record["decision"]
        if not period_from <= moment < period_to:
            continue
        if decision.get("agent") == ERASURE_AGENT and decision.get("action") == ERASURE_ACTION:
            meta = decision.get("metadata") or {}
            values = int(meta.get("values_erased", 0))
            erasures.append(ErasureSummary(record["id"], record["recorded_at"], values))
            continue
        if agent is not None and decision.get("agent") != agent:
            continue
        total += 1
        by["agent"][str(decision.get("agent"))] += 1
        model = decision.get("model") or {}
        by["model"][str(model.get("name", "none"))] += 1
        by["action"][str(decision.get("action"))] += 1
        by["kind"][str(decision.get("kind", "custom"))] += 1
        confidence[_bucket(decision.get("confidence"))] += 1
        oversight = decision.get("oversight")
        if isinstance(oversight, dict) or decision.get("kind") == "human_review":
            reviewed += 1
            overridden += bool(isinstance(oversight, dict) and oversight.get("overridden"))
        errors += _is_error(decision)
    trust = keyring.trust
    origin = ledger.tree.checkpoint_origin(tenant)
    notes = [
        open_checkpoint(n, trust, origin) for n in await ledger.tree.stored_checkpoints(tenant)
    ]
    if period_to >= now and size_at_end:
        notes.append(await ledger.tree.checkpoint(tenant))
    start = _checkpoint_at_or_before(notes, size_at_start)
    end = _checkpoint_at_or_before(notes, size_at_end)
    proof: list[str] = []
    if start is not None and end is not None and 0 < start.size <= end.size:
        _, hashes = await ledger.tree.consistency_proof(tenant, start.size, end.size)
        proof = [h.hex() for h in hashes]
    verification = verify_records(records, tenant=tenant, trust=trust, checkpoints=notes)
    problem = verification.problem
    retention_ok = verification.ok and (not records or records[0]["sequence"] == 0)
    return ComplianceReport(
        tenant=tenant,
        agent=agent,
        period_from=format_time(period_from),
        period_to=format_time(period_to),
        generated_at=format_time(now),
        total_decisions=total,
        by_agent=_counts(by["agent"]),
        by_model=_counts(by["model"]),
        by_action=_counts(by["action"]),
        by_kind=_counts(by["kind"]),
        reviewed=reviewed,
        overridden=overridden,
        errors=errors,
        confidence_histogram=[Count(label, confidence[label]) for label in [*BUCKETS, "none"]],
        erasures=erasures,
        oldest_record_at=oldest,
        retention_days_required=retention_days,
        retention_met=retention_ok,
        key_rotations=[_rotation(k) for k in trust.keys.values()],
        checkpoint_start=_summary(start),
        checkpoint_end=_summary(end),
        consistency_proof=proof,
        verification_ok=verification.ok,
        verification_detail="every record, chain, signature and checkpoint verified"
        if problem is None
        else f"{problem.reason}: {problem.detail}",
        extra={
            "log_size": len(records),
            "retention_window_start": format_time(now - timedelta(days=retention_days)),
        },
    )


def _rotation(key: PublicKey) -> KeyRotation:
    until = None if key.not_after is None else format_time(key.not_after)
    return KeyRotation(key.key_id, format_time(key.not_before), until)


def _checkpoint_at_or_before(notes: list[SignedCheckpoint], size: int) -> SignedCheckpoint | None:
    fitting = [note for note in notes if note.size <= size]
    return max(fitting, key=lambda note: note.size) if fitting else None


def _summary(checkpoint: SignedCheckpoint | None) -> CheckpointSummary | None:
    if checkpoint is None:
        return None
    return CheckpointSummary(checkpoint.size, checkpoint.root.hex(), checkpoint.note)


def sign_report(report: dict[str, Any], keyring: Keyring) -> dict[str, str]:
    """Sign the report's canonical JSON: returns its digest, key id and signature."""
    digest = hashlib.sha256(canonical_json(report)).digest()
    key_id, signature = keyring.sign(REPORT_DOMAIN, digest)
    return {
        "sha256": digest.hex(),
        "key_id": key_id,
        "signature": base64.b64encode(signature).decode(),
    }


def verify_signed_report(*, document: Any, trust: TrustRoot) -> dict[str, Any]:
    """Check a signed compliance report (``{"report": …, "signature": …}``, the JSON form the
    service and ``decisiontrail report`` write) against a trust root held independently: the
    signature over the report's canonical JSON by a key valid when it was generated, its
    checkpoint notes, and the consistency proof from the start checkpoint to the end one."""
    if not isinstance(document, dict) or not isinstance(document.get("report"), dict):
        return _report_problem("not_a_report", "the file is not a signed compliance report")
    report, signature = document["report"], document.get("signature")
    if not isinstance(signature, dict):
        return _report_problem("unsigned", "the report carries no signature")
    digest = hashlib.sha256(canonical_json(report)).digest()
    if signature.get("sha256") != digest.hex():
        return _report_problem("modified", "the report does not match its signed digest")
    try:
        raw = base64.b64decode(str(signature.get("signature", "")), validate=True)
        generated = parse_time(str(report["generated_at"]))
    except (KeyError, ValueError) as exc:
        return _report_problem("malformed", f"unreadable report or signature: {exc}")
    reason = trust.verify(str(signature.get("key_id")), REPORT_DOMAIN + digest, raw, generated)
    if reason is not None:
        return _report_problem("bad_signature", reason)
    opened: list[SignedCheckpoint] = []
    for name in ("checkpoint_start", "checkpoint_end"):
        summary = report.get(name)
        if summary is None:
            continue
        try:
            checkpoint = open_checkpoint(str(summary["note"]), trust)
        except (CheckpointError, KeyError, TypeError) as exc:
            return _report_problem("bad_checkpoint", f"{name}: {exc}")
        if not checkpoint.origin.endswith(f"/{report.get('tenant')}"):
            return _report_problem("bad_checkpoint", f"{name} is another tenant's")
        opened.append(checkpoint)
    if len(opened) == 2 and 0 < opened[0].size <= opened[1].size:
        try:
            proof = [bytes.fromhex(h) for h in report.get("consistency_proof") or []]
            merkle.verify_consistency(
                opened[0].size, opened[1].size, opened[0].root, opened[1].root, proof
            )
        except (ValueError, merkle.MerkleError) as exc:
            return _report_problem("inconsistent", f"the consistency proof fails: {exc}")
    return {"ok": True, "first_problem": None, "key_id": signature.get("key_id"),
            "checkpoints_checked": len(opened)}  # fmt: skip


def _report_problem(reason: str, detail: str) -> dict[str, Any]:
    return {"ok": False, "first_problem": {"reason": reason, "detail": detail}}
