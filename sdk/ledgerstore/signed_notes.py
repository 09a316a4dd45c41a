"""C2SP signed notes: checkpoints, Ed25519 signatures and cosignatures, verifier keys.

Pure: no I/O, no storage, no clock. Formats: https://c2sp.org/signed-note,
https://c2sp.org/tlog-checkpoint and the Ed25519 cosignature of https://c2sp.org/tlog-cosignature.
The tree math whose roots the checkpoints carry is in :mod:`ledgerstore.tlog_proofs`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledgerstore.tlog_proofs import HASH_SIZE, MalformedProofError, MerkleError

__all__ = [
    "MAX_NOTE_SIGNATURES",
    "SIGNATURE_TYPE_COSIGNATURE_V1",
    "SIGNATURE_TYPE_ED25519",
    "Checkpoint",
    "MalformedNoteError",
    "NoteSignature",
    "NoteSignatureError",
    "NoteVerifier",
    "add_cosignature",
    "add_signature",
    "cosignature_message",
    "note_key_id",
    "open_note",
    "parse_checkpoint_body",
    "parse_note",
    "parse_verifier_key",
    "sign_note",
    "verifier_key_string",
]


class MalformedNoteError(MalformedProofError):
    """A note, checkpoint body or verifier key that does not follow its C2SP format."""


class NoteSignatureError(MerkleError):
    """No signature from a known key verifies, or one from a known key is bad."""


# --- checkpoints (c2sp.org/tlog-checkpoint) ---

_MAX_TREE_SIZE = 2**64 - 1  # the size is a uint64 in every C2SP consumer
_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline


def _text(value: str | bytes, what: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError(f"{what} is not valid UTF-8") from exc
    if _CONTROL.search(value):
        raise MalformedNoteError(f"{what} contains a control character")
    return value


def _check_line(line: str, what: str) -> None:
    if not line or "\n" in line or _CONTROL.search(line):
        raise MalformedNoteError(f"{what} must be a non-empty line without control characters")


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedNoteError(f"{what} is not base64") from exc
    # Only the canonical encoding: no stray padding bits, so one value has one spelling.
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedNoteError(f"{what} is not canonical base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed tree head: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "checkpoint origin")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise MalformedNoteError(f"checkpoint size {self.size} is not a uint64")
        if len(self.root) != HASH_SIZE:
            raise MalformedNoteError(f"checkpoint root has {len(self.root)} bytes")
        for line in self.extensions:
            _check_line(line, "checkpoint extension")

    def body(self) -> bytes:
        """The note text: one line each for origin, size, base64 root, then the extensions."""
        lines = (self.origin, str(self.size), _b64(self.root), *self.extensions)
        return "".join(f"{line}\n" for line in lines).encode("utf-8")


def parse_checkpoint_body(text: str | bytes) -> Checkpoint:
    """Parse a checkpoint note text strictly (the inverse of ``Checkpoint.body``)."""
    body = _text(text, "checkpoint")
    if not body.endswith("\n"):
        raise MalformedNoteError("checkpoint must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedNoteError("checkpoint needs origin, size and root lines")
    origin, size, root, *extensions = lines
    if not _TREE_SIZE.fullmatch(size):
        raise MalformedNoteError(f"checkpoint size {size!r} is not a canonical decimal")
    return Checkpoint(origin, int(size), _b64decode(root, "checkpoint root"), tuple(extensions))


# --- signed notes (c2sp.org/signed-note, c2sp.org/tlog-cosignature) ---

SIGNATURE_TYPE_ED25519 = 0x01
SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04  # timestamped Ed25519 witness cosignature
MAX_NOTE_SIGNATURES = 100  # the spec asks to accept at least 16; Go's note package allows 100
_SIGNATURE_TYPES = (SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_COSIGNATURE_V1)
_MAX_TIMESTAMP = 2**63 - 1


def _check_key_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or _CONTROL.search(name):
        raise MalformedNoteError(f"bad key name {name!r}: empty, or has a space or '+'")


def note_key_id(
    name: str, public_key: bytes, signature_type: int = SIGNATURE_TYPE_ED25519
) -> bytes:
    """SHA-256(name ‖ 0x0A ‖ signature type ‖ public key)[:4]."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    ).digest()[:4]


def cosignature_message(body: bytes, timestamp: int) -> bytes:
    """What a tlog-cosignature/v1 signs: a header line, a time line, then the note text."""
    return b"cosignature/v1\ntime %d\n" % timestamp + body


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted key: its name, Ed25519 public key and signature type (0x01 or 0x04)."""

    name: str
    public_key: Ed25519PublicKey
    signature_type: int = SIGNATURE_TYPE_ED25519

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if self.signature_type not in _SIGNATURE_TYPES:
            raise MalformedNoteError(f"unsupported signature type {self.signature_type:#04x}")

    @property
    def key_id(self) -> bytes:
        return note_key_id(self.name, self.public_key.public_bytes_raw(), self.signature_type)

    def verifies(self, body: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the part after the key id) signs note text ``body``."""
        message = body
        if self.signature_type == SIGNATURE_TYPE_COSIGNATURE_V1:
            # timestamped_signature: u64 big-endian POSIX time, then the Ed25519 signature.
            if len(signature) != 8 + 64 or signature[0] & 0x80:
                return False
            timestamp = int.from_bytes(signature[:8], "big")
            message, signature = cosignature_message(body, timestamp), signature[8:]
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key id (a hint), and the signature after it."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"— {self.name} {_b64(self.key_id + self.signature)}\n"


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith("— "):
        raise MalformedNoteError(f"signature line {line!r} does not start with '— '")
    name, space, encoded = line[2:].partition(" ")
    if not space:
        raise MalformedNoteError(f"signature line {line!r} has no signature")
    _check_key_name(name)
    blob = _b64decode(encoded, "signature")
    if len(blob) < 5:
        raise MalformedNoteError("signature shorter than a key id and one byte")
    return NoteSignature(name, blob[:4], blob[4:])


def parse_note(note: str | bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into its text and signature lines, verifying nothing."""
    text = _text(note, "note")
    if not text.endswith("\n"):
        raise MalformedNoteError("note must end with a newline")
    # Signature lines are never empty, so the last blank line separates text and signatures.
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    lines = text[split + 2 : -1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise MalformedNoteError(f"note has more than {MAX_NOTE_SIGNATURES} signatures")
    return text[: split + 1].encode("utf-8"), [_parse_signature_line(line) for line in lines]


def open_note(
    note: str | bytes, verifiers: Iterable[NoteVerifier] | Mapping[str, Ed25519PublicKey]
) -> tuple[bytes, list[str]]:
    """Verify a note; return its text and the names of the known keys that signed it.

    A mapping means plain Ed25519 keys by name. Signatures from unknown keys (name and key id
    not both matching) are ignored; a bad signature from a known key rejects the whole note.
    """
    body, signatures = parse_note(note)
    if isinstance(verifiers, Mapping):
        verifiers = [NoteVerifier(name, key) for name, key in verifiers.items()]
    known = {(v.name, v.key_id): v for v in verifiers}
    names: list[str] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verifies(body, sig.signature):
            raise NoteSignatureError(f"signature by known key {sig.name!r} does not verify")
        if sig.name not in names:
            names.append(sig.name)
    if not names:
        raise NoteSignatureError("note has no signature from a known key")
    return body, names


def _note_text(body: str | bytes) -> bytes:
    text = _text(body, "note text")
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    return text.encode("utf-8")


def sign_note(body: str | bytes, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: ``body``, a blank line, and one Ed25519 signature line by ``name``."""
    text = _note_text(body)
    _check_key_name(name)
    key_id = note_key_id(name, private_key.public_key().public_bytes_raw())
    line = NoteSignature(name, key_id, private_key.sign(text)).line()
    return text.decode("utf-8") + "\n" + line


def add_signature(note: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """``note`` with one more plain Ed25519 signature line over its text."""
    body, _ = parse_note(note)
    _check_key_name(name)
    key_id = note_key_id(name, private_key.public_key().public_bytes_raw())
    return note + NoteSignature(name, key_id, private_key.sign(body)).line()


def add_cosignature(note: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """``note`` with a tlog-cosignature/v1 line by witness ``name`` at POSIX ``timestamp``."""
    body, _ = parse_note(note)
    _check_key_name(name)
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise MalformedNoteError(f"cosignature timestamp {timestamp} out of range")
    raw_key = private_key.public_key().public_bytes_raw()
    key_id = note_key_id(name, raw_key, SIGNATURE_TYPE_COSIGNATURE_V1)
    signature = timestamp.to_bytes(8, "big") + private_key.sign(
        cosignature_message(body, timestamp)
    )
    return note + NoteSignature(name, key_id, signature).line()


def verifier_key_string(
    name: str, public_key: Ed25519PublicKey, signature_type: int = SIGNATURE_TYPE_ED25519
) -> str:
    """The vkey ``<name>+<hex key id>+<base64(type ‖ public key)>``."""
    verifier = NoteVerifier(name, public_key, signature_type)
    raw = bytes([signature_type]) + public_key.public_bytes_raw()
    return f"{name}+{verifier.key_id.hex()}+{_b64(raw)}"


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse a vkey string, checking that its key id matches its name and key."""
    parts = vkey.split("+", 2)  # names have no '+', but base64 may
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-fA-F]{8}", parts[1]):
        raise MalformedNoteError(f"bad verifier key {vkey!r}")
    name, key_id, encoded = parts
    raw = _b64decode(encoded, "verifier key")
    if len(raw) != 33:
        raise MalformedNoteError("verifier key must be a type byte and 32 Ed25519 bytes")
    verifier = NoteVerifier(name, Ed25519PublicKey.from_public_bytes(raw[1:]), raw[0])
    if verifier.key_id != bytes.fromhex(key_id):
        raise MalformedNoteError(f"verifier key id {key_id} does not match its name and key")
    return verifier
