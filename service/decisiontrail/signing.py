"""Ed25519 signing keys with validity windows, kept in a key directory, rotated without
invalidating what older keys signed.

The key directory holds ``keyring.json`` (public: every key's id, public key and validity
window — the trust root a verifier needs) and one ``<key_id>.pem`` per private key, written with
mode 0600. A key signs only inside its window; a signature verifies only if the key's window
covers the time the record claims (``recorded_at``), so a retired key cannot be used to forge
new records that verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledgerstore import merkle

RECORD_DOMAIN = b"decisiontrail/record/v1\n"
REPORT_DOMAIN = b"decisiontrail/report/v1\n"
RECEIPT_DOMAIN = b"decisiontrail/erasure-receipt/v1\n"


class KeyringError(Exception):
    """The key directory is missing, unreadable or inconsistent."""


class UnknownKeyError(KeyringError):
    """A signature names a key id the trust root does not list."""


def key_id_for(public_key: bytes) -> str:
    """A key's id: the first 8 bytes of SHA-256 of its raw public key, in hex."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _format_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class PublicKey:
    """One entry of the trust root."""

    key_id: str
    public_key: bytes
    not_before: datetime
    not_after: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return self.not_before <= moment and (self.not_after is None or moment < self.not_after)

    def ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.ed25519().verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self, note_name: str) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "algorithm": "ed25519",
            "public_key": base64.b64encode(self.public_key).decode(),
            "not_before": _format_time(self.not_before),
            "not_after": _format_time(self.not_after),
            "note_verifier_key": merkle.verifier_key_string(note_name, self.ed25519()),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublicKey:
        try:
            public = base64.b64decode(data["public_key"], validate=True)
            key = cls(
                key_id=str(data["key_id"]),
                public_key=public,
                not_before=_parse_time(data["not_before"]) or datetime.min.replace(tzinfo=UTC),
                not_after=_parse_time(data.get("not_after")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyringError(f"malformed key entry: {exc}") from None
        if len(public) != 32 or key_id_for(public) != key.key_id:
            raise KeyringError(f"key {key.key_id} does not match its public key")
        return key


@dataclass
class TrustRoot:
    """The public keys a verifier trusts, with their windows."""

    note_name: str
    keys: dict[str, PublicKey] = field(default_factory=dict)

    def verify(self, key_id: str, message: bytes, signature: bytes, at: datetime) -> str | None:
        """None if the signature is good and the key was valid at ``at``; else the reason."""
        key = self.keys.get(key_id)
        if key is None:
            return f"unknown signing key {key_id}"
        if not key.covers(at):
            return f"key {key_id} was not valid at {_format_time(at)}"
        if not key.verify(message, signature):
            return "the signature does not verify"
        return None

    def note_verifiers(self) -> list[merkle.NoteVerifier]:
        return [merkle.NoteVerifier(self.note_name, k.ed25519()) for k in self.keys.values()]

    def to_json(self) -> dict[str, Any]:
        return {
            "note_name": self.note_name,
            "keys": [key.to_json(self.note_name) for key in self.keys.values()],
        }

    @classmethod
    def from_public_key(cls, text: str, note_name: str) -> TrustRoot:
        """A trust root of one Ed25519 public key (PEM or base64 raw), valid at all times."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                key = serialization.load_pem_public_key(text.encode())
                if not isinstance(key, Ed25519PublicKey):
                    raise KeyringError("the public key is not an Ed25519 key")
                raw = _raw_public(key)
            else:
                raw = base64.b64decode(text, validate=True)
                Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, TypeError) as exc:
            raise KeyringError(f"cannot read the public key: {exc}") from None
        entry = PublicKey(key_id_for(raw), raw, datetime.min.replace(tzinfo=UTC))
        return cls(note_name, {entry.key_id: entry})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrustRoot:
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise KeyringError("a trust root is an object with a list of keys")
        keys = [PublicKey.from_json(item) for item in data["keys"]]
        return cls(str(data.get("note_name", "")), {key.key_id: key for key in keys})


class Keyring:
    """The service's signing keys: the trust root plus the private keys it holds."""

    def __init__(self, trust: TrustRoot, private: dict[str, Ed25519PrivateKey]) -> None:
        self.trust = trust
        self._private = private

    @property
    def note_name(self) -> str:
        return self.trust.note_name

    def active(self, now: datetime | None = None) -> tuple[str, Ed25519PrivateKey]:
        """The newest key whose window covers ``now`` and whose private half is held."""
        now = now or datetime.now(UTC)
        usable = [
            key
            for key in self.trust.keys.values()
            if key.covers(now) and key.key_id in self._private
        ]
        if not usable:
            raise KeyringError("no signing key is valid now")
        newest = max(usable, key=lambda key: key.not_before)
        return newest.key_id, self._private[newest.key_id]

    def sign(self, domain: bytes, digest: bytes, now: datetime | None = None) -> tuple[str, bytes]:
        key_id, key = self.active(now)
        return key_id, key.sign(domain + digest)

    def sign_note(self, body: bytes, now: datetime | None = None) -> str:
        _, key = self.active(now)
        return merkle.sign_note(body, self.note_name, key)

    def rotate(self, directory: Path, now: datetime | None = None) -> PublicKey:
        """Retire the current keys at ``now`` and start a new one; persists the key directory."""
        now = now or datetime.now(UTC)
        private = Ed25519PrivateKey.generate()
        public = _raw_public(private.public_key())
        new = PublicKey(key_id_for(public), public, not_before=now)
        for key_id, key in list(self.trust.keys.items()):
            if key.not_after is None or key.not_after > now:
                self.trust.keys[key_id] = PublicKey(key.key_id, key.public_key, key.not_before, now)
        self.trust.keys[new.key_id] = new
        self._private[new.key_id] = private
        _write_private(directory, new.key_id, private)
        _write_trust(directory, self.trust)
        return new

    @classmethod
    def load_or_create(cls, directory: Path, note_name: str) -> tuple[Keyring, bool]:
        """Load the key directory, or create it with a fresh key; says whether it created."""
        trust_path = directory / "keyring.json"
        if not trust_path.exists():
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            keyring = cls(TrustRoot(note_name), {})
            keyring.rotate(directory)
            return keyring, True
        try:
            trust = TrustRoot.from_json(json.loads(trust_path.read_text()))
        except (OSError, ValueError) as exc:
            raise KeyringError(f"cannot read {trust_path}: {exc}") from None
        trust.note_name = note_name
        private: dict[str, Ed25519PrivateKey] = {}
        for key_id in trust.keys:
            path = directory / f"{key_id}.pem"
            if path.exists():
                private[key_id] = _read_private(path, trust.keys[key_id])
        return cls(trust, private), False

    @classmethod
    def from_private_key(cls, key: Ed25519PrivateKey, note_name: str) -> Keyring:
        """A keyring of one configured key, valid from the beginning of time."""
        public = _raw_public(key.public_key())
        entry = PublicKey(key_id_for(public), public, datetime.min.replace(tzinfo=UTC))
        return cls(TrustRoot(note_name, {entry.key_id: entry}), {entry.key_id: key})


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 private key, or its 32-byte seed in base64."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError) as exc:
        raise KeyringError(f"the configured signing key cannot be read: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyringError("the configured signing key is not an Ed25519 key")
    return key


def _read_private(path: Path, expected: PublicKey) -> Ed25519PrivateKey:
    key = private_key_from_text(path.read_text())
    if _raw_public(key.public_key()) != expected.public_key:
        raise KeyringError(f"{path.name} does not hold the key keyring.json lists for it")
    return key


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_private(directory: Path, key_id: str, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(directory / f"{key_id}.pem", pem, 0o600)


def _write_trust(directory: Path, trust: TrustRoot) -> None:
    body = json.dumps(trust.to_json(), indent=2).encode() + b"\n"
    _write_atomically(
        directory / "keyring.json", body, 0o600
    )  # public, yet every data file is 0600
