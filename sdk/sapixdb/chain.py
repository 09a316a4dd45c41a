"""The record format: the MessagePack envelope stored per record and its content hash.

A record is one ledgerstore entry whose payload is the MessagePack array::

    [1, timestamp_hlc, parent_hash (32 bytes), schema_version, collection | None, payload]

where ``payload`` is the record's own MessagePack bytes (what ``payload_b64`` carries). Its
content hash (64 lowercase hex) is::

    BLAKE3(b"sapixdb.record.v1" | parent_hash (32 bytes) | u64 timestamp_hlc | u32 flags
           | u32 schema_version | u16 len + collection (UTF-8, empty if none) | payload)

The first record of a strand has 32 zero bytes as its parent. Equal payloads written twice get
different hashes (the parent and the clock differ), and each hash chains its strand.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import blake3
import msgpack

__all__ = ["ENVELOPE_VERSION", "GENESIS_PARENT", "Envelope", "content_hash"]

ENVELOPE_VERSION = 1
GENESIS_PARENT = bytes(32)
_DOMAIN = b"sapixdb.record.v1"
_HEADER = struct.Struct(">32sQII")


def content_hash(
    *,
    parent: bytes,
    hlc: int,
    flags: int,
    schema_version: int,
    collection: str | None,
    payload: bytes,
) -> str:
    """The record hash described in the module docstring."""
    name = (collection or "").encode()
    digest = blake3.blake3(_DOMAIN)
    digest.update(_HEADER.pack(parent, hlc, flags, schema_version))
    digest.update(struct.pack(">H", len(name)) + name)
    digest.update(payload)
    return str(digest.hexdigest())


class Envelope(NamedTuple):
    """A record as stored (everything but the entry's id, flags and hash columns)."""

    version: int
    hlc: int
    parent: bytes
    schema_version: int
    collection: str | None
    payload: bytes

    def value(self) -> list[Any]:
        """The array ledgerstore stores as MessagePack."""
        return list(self)

    @classmethod
    def decode(cls, stored: bytes) -> Envelope:
        """Parse an entry's MessagePack payload."""
        version, hlc, parent, schema, collection, payload = msgpack.unpackb(stored, raw=False)
        return cls(int(version), int(hlc), bytes(parent), int(schema), collection, bytes(payload))
