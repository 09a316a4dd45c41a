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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
    LogVerifier,
    SignedCheckpoint,
    open_checkpoint,
    verify_off_loop,
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


@dataclass
class _Tally:
    """What a report counts, one record at a time (the log is streamed, never held)."""

    period_from: datetime
    period_to: datetime
    agent: str | None
    by: dict[str, Counter[str]] = field(
        default_factory=lambda: {k: Counter() for k in ("agent", "model", "action", "kind")}
    )
    confidence: Counter[str] = field(
        default_factory=lambda: Counter({label: 0 for label in [*BUCKETS, "none"]})
    )
    total: int = 0
    reviewed: int = 0
    overridden: int = 0
    errors: int = 0
    erasures: list[ErasureSummary] = field(default_factory=list)
    oldest: str | None = None
    first_sequence: int | None = None
    log_size: int = 0
    size_at_start: int = 0
    size_at_end: int = 0

    def add(self, record: dict[str, Any], log_index: int) -> None:
        self.log_size += 1
        moment = parse_time(record["recorded_at"])
        if self.oldest is None:
            self.oldest, self.first_sequence = record["recorded_at"], record["sequence"]
        if moment < self.period_from:
            self.size_at_start = log_index + 1
        if moment < self.period_to:
            self.size_at_end = log_index + 1
        decision = record["decision"]
        if not self.period_from <= moment < self.period_to:
            return
        if decision.get("agent") == ERASURE_AGENT and decision.get("action") == ERASURE_ACTION:
            meta = decision.get("metadata") or {}
            values = int(meta.get("values_erased", 0))
            self.erasures.append(ErasureSummary(record["id"], record["recorded_at"], values))
            return
        if self.agent is not None and decision.get("agent") != self.agent:
            return
        self.total += 1
        self.by["agent"][str(decision.get("agent"))] += 1
        model = decision.get("model") or {}
        self.by["model"][str(model.get("name", "none"))] += 1
        self.by["action"][str(decision.get("action"))] += 1
        self.by["kind"][str(decision.get("kind", "custom"))] += 1
        self.confidence[_bucket(decision.get("confidence"))] += 1
        oversight = decision.get("oversight")
        if isinstance(oversight, dict) or decision.get("kind") == "human_review":
            self.reviewed += 1
            self.overridden += bool(isinstance(oversight, dict) and oversight.get("overridden"))
        self.errors += _is_error(decision)


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
    """A tenant's compliance report for a period. The log is streamed once: counted here,
    and verified (hashes, chains, signatures, checkpoints) in a worker thread a chunk at a
    time, so the event loop keeps serving other requests."""
    now = datetime.now(UTC)
    trust = keyring.trust
    origin = ledger.tree.checkpoint_origin(tenant)
    notes = [
        open_checkpoint(n, trust, origin) for n in await ledger.tree.stored_checkpoints(tenant)
    ]
    if period_to >= now:
        current = await ledger.tree.checkpoint(tenant)
        if current.size:
            notes.append(current)
    tally = _Tally(period_from, period_to, agent)
    verifier = LogVerifier(tenant, trust, list(notes), None)

    async def counted() -> AsyncIterator[tuple[dict[str, Any], int | None]]:
        async for receipt in ledger.reads.records(tenant):
            tally.add(receipt.record, receipt.log_index)
            yield receipt.record, None

    await verify_off_loop(verifier, counted())
    verification = verifier.finish()
    start = _checkpoint_at_or_before(notes, tally.size_at_start)
    end = _checkpoint_at_or_before(notes, tally.size_at_end)
    proof: list[str] = []
    if start is not None and end is not None and 0 < start.size <= end.size:
        _, hashes = await ledger.tree.consistency_proof(tenant, start.size, end.size)
        proof = [h.hex() for h in hashes]
    problem = verification.problem
    retention_ok = verification.ok and tally.first_sequence in (None, 0)
    return ComplianceReport(
        tenant=tenant,
        agent=agent,
        period_from=format_time(period_from),
        period_to=format_time(period_to),
        generated_at=format_time(now),
        total_decisions=tally.total,
        by_agent=_counts(tally.by["agent"]),
        by_model=_counts(tally.by["model"]),
        by_action=_counts(tally.by["action"]),
        by_kind=_counts(tally.by["kind"]),
        reviewed=tally.reviewed,
        overridden=tally.overridden,
        errors=tally.errors,
        confidence_histogram=[
            Count(label, tally.confidence[label]) for label in [*BUCKETS, "none"]
        ],
        erasures=tally.erasures,
        oldest_record_at=tally.oldest,
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
            "log_size": tally.log_size,
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


async def decisions_per_day(*, ledger: Ledger, tenant: str, days: int) -> list[Count]:
    """How many decisions were recorded on each of the last ``days`` UTC days (oldest first,
    days without any included), erasure records left out: the console's activity chart."""
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    per_day: Counter[str] = Counter({str(first + timedelta(days=i)): 0 for i in range(days)})
    since = str(first)
    async for receipt in ledger.reads.records(tenant):
        record = receipt.record
        day = record["recorded_at"][:10]
        decision = record["decision"]
        erasure = (
            decision.get("agent") == ERASURE_AGENT and decision.get("action") == ERASURE_ACTION
        )
        if day >= since and not erasure:
            per_day[day] += 1
    return [Count(day, per_day[day]) for day in sorted(per_day)]


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
