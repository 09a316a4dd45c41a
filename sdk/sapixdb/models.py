"""What client methods return: plain frozen dataclasses built from wire dictionaries.

Each type carries the current protocol's names as fields and the seed's names (``id``,
``hash``, ``prev_hash``, ``timestamp``, ``data``) as properties, so code written against
either generation reads them unchanged. Unknown wire keys are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "GraphEdge",
    "Record",
    "StreamEvent",
    "TraverseResult",
    "WriteResult",
    "iso_timestamp",
]

ZERO_HASH = "0" * 64


def iso_timestamp(timestamp_ms: int) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``: the legacy ``timestamp`` format."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of a write: the new record's id and hash, and the strand's new head."""

    record_id: str
    content_hash: str
    parent_hash: str = ZERO_HASH
    timestamp_hlc: int = 0
    timestamp_ms: int = 0
    chain_head: str = ""

    @property
    def id(self) -> str:
        """The seed's name for ``record_id``."""
        return self.record_id

    @property
    def hash(self) -> str:
        """The seed's name for ``content_hash``."""
        return self.content_hash

    @property
    def prev_hash(self) -> str:
        """The seed's name for ``parent_hash``."""
        return self.parent_hash

    @property
    def timestamp(self) -> str:
        """The write time as ISO-8601 UTC (the seed's ``timestamp``)."""
        return iso_timestamp(self.timestamp_ms)

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> WriteResult:
        """Build from a write response of either wire generation."""
        content_hash = _str(body.get("content_hash"), _str(body.get("hash")))
        hlc = _int(body.get("timestamp_hlc"))
        return cls(
            record_id=_str(body.get("record_id"), _str(body.get("id"))),
            content_hash=content_hash,
            parent_hash=_str(body.get("parent_hash"), _str(body.get("prev_hash"), ZERO_HASH)),
            timestamp_hlc=hlc,
            timestamp_ms=_int(body.get("timestamp_ms"), hlc >> 16),
            chain_head=_str(body.get("chain_head"), content_hash),
        )


@dataclass(frozen=True, slots=True)
class Record:
    """One record of an agent's strand."""

    record_id: str
    content_hash: str
    parent_hash: str
    timestamp_hlc: int
    timestamp_ms: int
    payload: Any
    flags: int = 0
    schema_version: int = 1
    collection: str | None = None

    @property
    def id(self) -> str:
        """The seed's name for ``record_id``."""
        return self.record_id

    @property
    def hash(self) -> str:
        """The seed's name for ``content_hash``."""
        return self.content_hash

    @property
    def prev_hash(self) -> str:
        """The seed's name for ``parent_hash``."""
        return self.parent_hash

    @property
    def data(self) -> Any:
        """The seed's name for ``payload``."""
        return self.payload

    @property
    def timestamp(self) -> str:
        """The write time as ISO-8601 UTC (the seed's ``timestamp``)."""
        return iso_timestamp(self.timestamp_ms)

    @property
    def is_tombstone(self) -> bool:
        """Whether this record marks another one as deleted."""
        return bool(self.flags & 0b10)

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> Record:
        """Build from a record of either wire generation."""
        hlc = _int(body.get("timestamp_hlc"))
        payload = body["payload"] if "payload" in body else body.get("data")
        collection = body.get("collection")
        return cls(
            record_id=_str(body.get("record_id"), _str(body.get("id"))),
            content_hash=_str(body.get("content_hash"), _str(body.get("hash"))),
            parent_hash=_str(body.get("parent_hash"), _str(body.get("prev_hash"), ZERO_HASH)),
            timestamp_hlc=hlc,
            timestamp_ms=_int(body.get("timestamp_ms"), hlc >> 16),
            payload=payload,
            flags=_int(body.get("flags")),
            schema_version=_int(body.get("schema_version"), 1),
            collection=collection if isinstance(collection, str) else None,
        )


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """A typed, directed, weighted, time-stamped edge between two record ids."""

    src: str
    dst: str
    edge_type: str
    weight: float = 1.0
    timestamp_hlc: int = 0

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> GraphEdge:
        """Build from a wire edge ``{src, dst, edge_type, weight, timestamp_hlc}``."""
        weight = body.get("weight", 1.0)
        return cls(
            src=_str(body.get("src")),
            dst=_str(body.get("dst")),
            edge_type=_str(body.get("edge_type")),
            weight=float(weight) if isinstance(weight, int | float) else 1.0,
            timestamp_hlc=_int(body.get("timestamp_hlc")),
        )


@dataclass(frozen=True, slots=True)
class TraverseResult:
    """The records reached by a traversal and the edges followed to reach them."""

    nodes: list[Record] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> TraverseResult:
        """Build from a traverse response ``{nodes, edges}``."""
        return cls(
            nodes=[Record.from_wire(n) for n in body.get("nodes", []) if isinstance(n, dict)],
            edges=[GraphEdge.from_wire(e) for e in body.get("edges", []) if isinstance(e, dict)],
        )


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One ``record.written`` event of a live stream."""

    agent_id: str
    event_type: str
    record_id: str
    content_hash: str
    timestamp_ms: int
    payload: Any
    timestamp_hlc: int = 0

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> StreamEvent:
        """Build from the JSON data of one ``record.written`` SSE frame."""
        return cls(
            agent_id=_str(body.get("agent_id")),
            event_type=_str(body.get("event_type"), "record.written"),
            record_id=_str(body.get("record_id")),
            content_hash=_str(body.get("content_hash")),
            timestamp_ms=_int(body.get("timestamp_ms")),
            payload=body.get("payload"),
            timestamp_hlc=_int(body.get("timestamp_hlc")),
        )
