"""Decision records: personal data split into salted commitments, the canonical hash, the
chain link and the Ed25519 signature — and the checks that undo each step.

A record is a JSON object (RFC 8785 canonical bytes are what is hashed and signed):

    {"v": 1, "id": UUIDv7, "tenant": t, "chain": agent, "sequence": n,
     "prev_hash": hex (64 zeros first), "recorded_at": RFC 3339 UTC, "key_id": k,
     "decision": {... the client's envelope, each personal value replaced by
                  {"$commitment": "sha256:<hex>"} ...},
     "hash": hex, "signature": base64}

``hash`` = SHA-256 over the canonical record without ``hash`` and ``signature``;
``signature`` = Ed25519 over ``b"decisiontrail/record/v1\\n" || hash``. A personal value's
commitment is SHA-256(salt || canonical value) with a random 16-byte salt; value and salt live
in erasable storage, so after erasure the commitment proves nothing about the person while every
hash, chain link, signature and Merkle proof still verifies. Data-subject ids are personal too
and are always committed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from decisiontrail.canonical import canonical_json
from decisiontrail.signing import RECORD_DOMAIN, Keyring, TrustRoot

RECORD_VERSION = 1
GENESIS_HASH = "0" * 64
COMMITMENT_KEY = "$commitment"
SALT_BYTES = 16


@dataclass(frozen=True)
class PersonalValue:
    """A personal value taken out of a decision, with what is needed to check it later."""

    path: str
    value: Any
    salt: bytes

    @property
    def commitment(self) -> str:
        return commitment_for(self.value, self.salt)


def commitment_for(value: Any, salt: bytes) -> str:
    return "sha256:" + hashlib.sha256(salt + canonical_json(value)).hexdigest()


def is_commitment(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and COMMITMENT_KEY in value


def _walk(container: Any, parts: list[str]) -> tuple[Any, str | int] | None:
    """The parent container and key of a dotted path, or None if the path is absent."""
    for part in parts[:-1]:
        container = _child(container, part)
        if container is None:
            return None
    last = parts[-1]
    if isinstance(container, dict) and last in container:
        return container, last
    if isinstance(container, list) and last.isdigit() and int(last) < len(container):
        return container, int(last)
    return None


def _walk_copying(
    container: Any, parts: list[str], copies: set[int]
) -> tuple[Any, str | int] | None:
    """Like :func:`_walk`, but each container on the way is replaced by a shallow copy (once),
    so the value found can be changed without touching the caller's decision."""
    for part in parts[:-1]:
        child = _child(container, part)
        if not isinstance(child, dict | list):
            return None
        if id(child) not in copies:
            child = dict(child) if isinstance(child, dict) else list(child)
            copies.add(id(child))
            container[part if isinstance(container, dict) else int(part)] = child
        container = child
    return _walk(container, parts[-1:])


def _child(container: Any, part: str) -> Any:
    if isinstance(container, dict):
        return container.get(part)
    if isinstance(container, list) and part.isdigit() and int(part) < len(container):
        return container[int(part)]
    return None


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of plain JSON (several times faster than copy.deepcopy)."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(value))
    return copied


def split_personal(
    decision: dict[str, Any], paths: Iterable[str]
) -> tuple[dict[str, Any], list[PersonalValue]]:
    """Replace every personal value (the declared paths and every data subject id) by a salted
    commitment. Returns the committed decision and the values taken out."""
    committed = dict(decision)
    copies: set[int] = {id(committed)}  # containers that are ours to change
    taken: list[PersonalValue] = []
    targets = list(dict.fromkeys(paths))
    targets += [f"data_subjects.{i}" for i in range(len(committed.get("data_subjects") or []))]
    for path in targets:
        found = _walk_copying(committed, path.split("."), copies)
        if found is None:
            continue  # declared personal but not present in this decision
        parent, key = found
        value = parent[key]
        if value is None or is_commitment(value):
            continue
        personal = PersonalValue(path, value, os.urandom(SALT_BYTES))
        parent[key] = {COMMITMENT_KEY: personal.commitment}
        taken.append(personal)
    return committed, taken


def restore_personal(decision: dict[str, Any], values: Iterable[PersonalValue]) -> dict[str, Any]:
    """Put clear values back (for readers allowed to see them) after checking each commitment."""
    restored = _copy(decision)
    for personal in values:
        found = _walk(restored, personal.path.split("."))
        if found is None:
            continue
        parent, key = found
        if parent[key] == {COMMITMENT_KEY: personal.commitment}:
            parent[key] = personal.value
    return restored


@functools.lru_cache(maxsize=16)  # a batch seals every record at one moment
def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and Z: one spelling per instant, so hashes are stable."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k not in ("hash", "signature")}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def seal(
    *,
    decision: dict[str, Any],
    record_id: str,
    tenant: str,
    chain: str,
    sequence: int,
    prev_hash: str,
    recorded_at: datetime,
    keyring: Keyring,
) -> dict[str, Any]:
    """Build, hash and sign a record (the decision must already hold commitments only)."""
    record, _ = seal_with_leaf(
        decision=decision, record_id=record_id, tenant=tenant, chain=chain, sequence=sequence,
        prev_hash=prev_hash, recorded_at=recorded_at, keyring=keyring,
    )  # fmt: skip
    return record


def seal_with_leaf(
    *,
    decision: dict[str, Any],
    record_id: str,
    tenant: str,
    chain: str,
    sequence: int,
    prev_hash: str,
    recorded_at: datetime,
    keyring: Keyring,
) -> tuple[dict[str, Any], bytes]:
    """:func:`seal`, and the record's :func:`leaf_data`."""
    key_id, private_key = keyring.active(recorded_at)
    fields: dict[str, Any] = {
        "v": RECORD_VERSION,
        "id": record_id,
        "tenant": tenant,
        "chain": chain,
        "sequence": sequence,
        "prev_hash": prev_hash,
        "recorded_at": format_time(recorded_at),
        "key_id": key_id,
    }
    record = {**fields, "decision": decision}
    digest = hashlib.sha256(canonical_json(record)).hexdigest()
    signature = base64.b64encode(private_key.sign(RECORD_DOMAIN + bytes.fromhex(digest)))
    record["hash"], record["signature"] = digest, signature.decode()
    return record, leaf_data(record)


def leaf_data(record: dict[str, Any]) -> bytes:
    """What the record contributes to the Merkle tree: its canonical bytes, hash and signature
    included (leaf hash = SHA-256(0x00 || these bytes))."""
    return canonical_json(record)


@dataclass(frozen=True)
class RecordProblem:
    """Why a record (or its place in a chain) does not verify."""

    reason: str  # modified, bad_signature, missing, reordered, inserted, replayed, malformed
    record_id: str | None
    sequence: int | None
    detail: str


def check_record(record: Any, trust: TrustRoot) -> RecordProblem | None:
    """The record's own integrity: shape, canonical hash, and a signature by a key valid then."""
    if not isinstance(record, dict):
        return RecordProblem("malformed", None, None, "a record is a JSON object")
    record_id = record.get("id") if isinstance(record.get("id"), str) else None
    sequence = record.get("sequence") if isinstance(record.get("sequence"), int) else None
    try:
        digest = record_hash(record)
        signature = base64.b64decode(str(record["signature"]), validate=True)
        moment = parse_time(str(record["recorded_at"]))
        key_id = str(record["key_id"])
    except (KeyError, ValueError) as exc:
        return RecordProblem("malformed", record_id, sequence, f"unreadable record: {exc}")
    if digest != record.get("hash"):
        return RecordProblem("modified", record_id, sequence, "content does not match its hash")
    reason = trust.verify(key_id, RECORD_DOMAIN + bytes.fromhex(digest), signature, moment)
    if reason is not None:
        return RecordProblem("bad_signature", record_id, sequence, reason)
    return None
