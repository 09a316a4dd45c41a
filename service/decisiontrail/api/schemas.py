"""What the API answers, as typed schemas for the OpenAPI document.

The routes keep returning plain JSON built by the service functions; these models only
describe it (``**documented(Model)`` on the route), so documenting costs the hot ingest path
nothing. The schema fuzz test checks every answer against them. Roots and hashes are hex for
people; where C2SP fixes base64 (checkpoint roots, proof hashes) ``root_hex`` is beside it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class DecisionReceipt(_Answer):
    id: str = Field(description="UUIDv7 of the decision")
    tenant: str
    chain: str = Field(description="the agent whose hash chain holds the record")
    sequence: int = Field(description="position in the agent's chain, from 0")
    log_index: int = Field(description="leaf index in the tenant's Merkle tree")
    hash: str = Field(description="hex SHA-256 of the canonical record (docs/design.md)")
    prev_hash: str = Field(description="hex hash of the chain's previous record (0s first)")
    signature: str = Field(description="base64 Ed25519 signature")
    key_id: str
    recorded_at: str = Field(description="RFC 3339 UTC")


class BatchReceipt(_Answer):
    data: list[DecisionReceipt]
    count: int


class SealedRecord(_Answer):
    v: int
    id: str
    tenant: str
    chain: str
    sequence: int
    prev_hash: str
    recorded_at: str
    key_id: str
    decision: dict[str, Any] = Field(description="the envelope; personal values committed")
    hash: str
    signature: str
    personal_erased: bool | None = Field(
        None, description="with personal=true: whether the values were erased"
    )


class Decision(_Answer):
    record: SealedRecord
    log_index: int


class ListedDecision(Decision):
    sapix_id: str | None = None


class DecisionPage(_Answer):
    data: list[ListedDecision]
    next_cursor: str | None = Field(description="pass back as cursor for the next page")


class InclusionProof(_Answer):
    decision_id: str | None = None
    log_index: int
    tree_size: int
    root: str = Field(description="base64 (as in the checkpoint note)")
    root_hex: str
    proof: list[str] = Field(description="base64 hashes, RFC 9162 inclusion proof")
    checkpoint: str = Field(description="the signed C2SP checkpoint note")


class Provenance(_Answer):
    decision: SealedRecord
    log_index: int
    agent: dict[str, Any]
    model: dict[str, Any] | None
    run: dict[str, Any] = Field(description="run_id, parent_run_id, ancestors, siblings, …")
    session: dict[str, Any] | None
    data_subjects: dict[str, Any] = Field(description="count, and ids with read-personal")
    oversight: dict[str, Any]
    inclusion_proof: InclusionProof


class Checkpoint(_Answer):
    origin: str
    size: int
    root: str = Field(description="base64, as C2SP writes it")
    root_hex: str
    note: str = Field(description="the signed C2SP checkpoint note")


class Consistency(_Answer):
    from_size: int = Field(alias="from")
    to_size: int = Field(alias="to")
    from_root: str
    to_root: str
    from_root_hex: str
    to_root_hex: str
    proof: list[str] = Field(description="base64 hashes, RFC 9162 consistency proof")


class FirstProblem(_Answer):
    reason: str
    record_id: str | None
    sequence: int | None
    detail: str


class Verification(_Answer):
    ok: bool
    records_checked: int | None = None
    tree_size: int | None = None
    root: str | None = Field(None, description="hex Merkle root of the whole log")
    checkpoints_checked: int | None = None
    first_problem: FirstProblem | None = None
    stores: dict[str, Any] | None = Field(None, description="SapixDB against Genesis DB")


class ReportSignature(_Answer):
    sha256: str = Field(description="hex SHA-256 of the report's canonical JSON")
    key_id: str
    signature: str = Field(description="base64 Ed25519 over the report domain and digest")


class SignedReport(_Answer):
    report: dict[str, Any]
    signature: ReportSignature


class ErasureReceipt(_Answer):
    receipt_id: str
    tenant: str
    erased_at: str
    decisions: list[str]
    values_erased: int
    erasure_record_hash: str
    key_id: str
    signature: str


class LegalHoldState(_Answer):
    legal_hold: bool


def documented(model: type[BaseModel], status: int = 200) -> dict[str, Any]:
    """Route arguments for a route answering ``model``: documented, not re-validated (the
    return annotation is not taken as a second, untyped response model)."""
    return {"response_model": None, "responses": {status: {"model": model}}}
