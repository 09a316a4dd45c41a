"""What a compliance report says, independent of how it is rendered (JSON, CSV, HTML).

The service fills a :class:`ComplianceReport` from the stores; ``reports.py`` renders it. Every
field is plain data so the JSON rendering is the canonical form that gets signed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Count:
    """One row of a breakdown: a label and how many decisions carry it."""

    label: str
    count: int


@dataclass(frozen=True)
class CheckpointSummary:
    size: int
    root: str  # hex
    note: str  # the signed C2SP checkpoint note


@dataclass(frozen=True)
class ErasureSummary:
    receipt_id: str
    erased_at: str  # RFC 3339
    values_erased: int


@dataclass(frozen=True)
class KeyRotation:
    key_id: str
    not_before: str
    not_after: str | None


@dataclass(frozen=True)
class ComplianceReport:
    """A compliance report over one tenant and period (optionally one agent)."""

    tenant: str
    agent: str | None
    period_from: str  # RFC 3339
    period_to: str
    generated_at: str
    total_decisions: int
    by_agent: list[Count]
    by_model: list[Count]
    by_action: list[Count]
    by_kind: list[Count]
    reviewed: int  # decisions with a human-oversight record
    overridden: int  # of those, how many a human overrode
    errors: int  # decisions whose kind or tags mark an error
    confidence_histogram: list[Count]  # ten buckets "0.0–0.1" … "0.9–1.0", plus "none"
    erasures: list[ErasureSummary]
    oldest_record_at: str | None
    retention_days_required: int  # e.g. 183 (six months, EU AI Act art. 19/26)
    retention_met: bool
    key_rotations: list[KeyRotation]
    checkpoint_start: CheckpointSummary | None
    checkpoint_end: CheckpointSummary | None
    consistency_proof: list[str]  # hex hashes from the start checkpoint to the end one
    verification_ok: bool
    verification_detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def override_rate(self) -> float | None:
        return None if self.reviewed == 0 else self.overridden / self.reviewed

    @property
    def oversight_rate(self) -> float | None:
        return None if self.total_decisions == 0 else self.reviewed / self.total_decisions

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["override_rate"] = self.override_rate
        data["oversight_rate"] = self.oversight_rate
        return data
