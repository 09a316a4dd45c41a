"""The canonical encoding of an entry, its chain hash, and the hybrid logical clock.

An entry's hash is SHA-256 over a fixed binary layout of every stored column and the previous
entry's hash, so any change to any column, to the order, or to the predecessor changes it:

    b"LSE1" | u16 len + log name | u64 seq | u64 position | u64 hlc | 16-byte id
    | u32 flags | u8 format | (u32 len + bytes, or u32 0xFFFFFFFF for null) x (type, subject, key)
    | u32 len + payload | 32-byte prev_hash

The Merkle leaf of an entry is RFC 9162's ``SHA-256(0x00 || hash)``.
"""

from __future__ import annotations

import hashlib
import struct
import uuid

from ledgerstore.backend import Entry

GENESIS_HASH = bytes(32)
_MAGIC = b"LSE1"
_HEADER = struct.Struct(">QQQ16sIB")
_LEN = struct.Struct(">I")
_NULL = _LEN.pack(0xFFFFFFFF)


def log_prefix(log: str) -> bytes:
    """The layout's first part: the magic and the log name."""
    name = log.encode()
    return _MAGIC + struct.pack(">H", len(name)) + name


def text_field(value: str | None) -> bytes:
    """How the layout holds ``type``, ``subject`` or ``key``: length and UTF-8, or null."""
    if value is None:
        return _NULL
    raw = value.encode()
    return _LEN.pack(len(raw)) + raw


def assemble(
    prefix: bytes,
    seq: int,
    position: int,
    hlc: int,
    entry_id: bytes,
    flags: int,
    fmt: int,
    texts: bytes,
    payload: bytes,
    prev_hash: bytes,
) -> bytes:
    """The canonical bytes from their parts: ``prefix`` from :func:`log_prefix`, ``texts``
    the :func:`text_field` of type, subject and key (a writer prepares both once)."""
    return b"".join(
        (
            prefix,
            _HEADER.pack(seq, position, hlc, entry_id, flags, fmt),
            texts,
            _LEN.pack(len(payload)),
            payload,
            prev_hash,
        )
    )


def entry_bytes(
    *,
    log: str,
    seq: int,
    position: int,
    hlc: int,
    entry_id: bytes,
    flags: int,
    fmt: int,
    type: str | None,
    subject: str | None,
    key: str | None,
    payload: bytes,
    prev_hash: bytes,
) -> bytes:
    """The canonical bytes the entry hash is computed over."""
    texts = text_field(type) + text_field(subject) + text_field(key)
    return assemble(
        log_prefix(log), seq, position, hlc, entry_id, flags, fmt, texts, payload, prev_hash
    )


def recompute_hash(entry: Entry, *, seq: int | None = None) -> bytes:
    """The hash a stored entry should carry (optionally as if it sat at another ``seq``)."""
    return hashlib.sha256(
        entry_bytes(
            log=entry.log,
            seq=entry.seq if seq is None else seq,
            position=entry.position,
            hlc=entry.hlc,
            entry_id=uuid.UUID(entry.id).bytes,
            flags=entry.flags,
            fmt=int(entry.format),
            type=entry.type,
            subject=entry.subject,
            key=entry.key,
            payload=entry.payload,
            prev_hash=entry.prev_hash,
        )
    ).digest()


def next_hlc(last_hlc: int, wall_ms: int) -> int:
    """The next hybrid logical clock value: ``ms << 16 | counter``, strictly increasing.

    When the wall clock steps back (or stalls within a millisecond) the counter advances
    instead, carrying into the millisecond bits if it must.
    """
    return max(wall_ms << 16, last_hlc + 1)
