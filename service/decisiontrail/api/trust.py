"""The trust root, published: what anyone needs to verify records, reports, receipts and
checkpoint notes independently, without an API key."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from decisiontrail.deps import StateDep

router = APIRouter(tags=["integrity"])


class TrustKey(BaseModel):
    key_id: str = Field(description="hex: the first 8 bytes of SHA-256 of the raw public key")
    algorithm: str = Field(description="always ed25519")
    public_key: str = Field(description="the raw 32-byte Ed25519 public key, base64")
    not_before: str = Field(description="RFC 3339: records sealed from this time on")
    not_after: str | None = Field(description="RFC 3339, or null while the key is active")
    note_verifier_key: str = Field(
        description="C2SP signed-note verifier key: <name>+<key hash hex>+<base64(0x01 ‖ key)>"
    )


class TrustRoot(BaseModel):
    note_name: str = Field(description="the key name on checkpoint notes' signature lines")
    keys: list[TrustKey]


@router.get("/v1/trust-root", response_model=TrustRoot)
async def trust_root(state: StateDep) -> TrustRoot:
    """The service's public signing keys with their validity windows and checkpoint-note
    verifier keys (no API key needed: these are public)."""
    return TrustRoot.model_validate(state.keyring.trust.to_json())
