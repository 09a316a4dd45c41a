"""The global event hash chain and the commitments that keep erasable data out of it.

Algorithm (documented in the README and recomputed by ``audit``):

- ``hash = SHA-256(JCS(event without "hash"))`` as 64 lowercase hex digits, where JCS is the
  RFC 8785 canonical JSON encoding (``ledgerstore.jcs``: byte-for-byte the reference
  ``rfc8785``, several times faster) of the nine other fields.
- ``predecessorhash`` is the previous event's ``hash`` in commit order; the first event's is
  64 zeros (``GENESIS``).
- An event stored with ``storeDataAsReference`` contributes a *commitment* instead of its data:
  ``{"reference": <ref id>, "digest": <hex SHA-256(salt ‖ JCS(data))>, "keys": <skeleton>}``.
  The salt is random per event and lives (and dies) with the value in ledgerstore's erasable
  side store, so after erasure neither the value nor a guessable hash of it remains, while the
  commitment — and so the chain — is unchanged. The skeleton is the data with every leaf value
  replaced by ``""``: what erased events stream as.
"""

from __future__ import annotations

import hashlib
from typing import Any

from genesisdb.exceptions import InvalidEventError
from ledgerstore import jcs

GENESIS = "0" * 64

__all__ = ["GENESIS", "canonical", "commitment", "event_hash", "salted_digest", "skeleton"]


def canonical(value: Any, *, what: str = "data") -> bytes:
    """RFC 8785 bytes of ``value``; a value JSON cannot canonicalize is an InvalidEventError."""
    try:
        return jcs.canonical_json(value)
    except jcs.CanonicalizationError:
        # Never quote the value (it may be personal data); jcs's messages do not either.
        raise InvalidEventError(
            f"{what} is not canonical JSON: numbers must be finite and integers within "
            "±(2**53 − 1), strings valid Unicode, nesting reasonable"
        ) from None


def event_hash(event: dict[str, Any]) -> str:
    """SHA-256 over the canonical event without its ``hash`` field."""
    body = (
        {key: value for key, value in event.items() if key != "hash"} if "hash" in event else event
    )
    return hashlib.sha256(canonical(body, what="event")).hexdigest()


def salted_digest(salt: bytes, data: Any) -> str:
    """The salted commitment to a referenced data value."""
    return hashlib.sha256(salt + canonical(data)).hexdigest()


def commitment(reference: str, digest: str, keys: Any) -> dict[str, Any]:
    """What a referenced event's ``data`` contributes to its hash."""
    return {"reference": reference, "digest": digest, "keys": keys}


def skeleton(value: Any) -> Any:
    """``value`` with every leaf replaced by ``""`` (object keys and array lengths kept)."""
    if isinstance(value, dict):
        return {key: skeleton(item) for key, item in value.items()}
    if isinstance(value, list):
        return [skeleton(item) for item in value]
    return ""
