"""The one implementation of SapixDB's semantics, on ledgerstore.

The embedded transport calls this module directly and the server's routes call it too, so both
transports answer with the same dictionaries. It imports no transport, no web framework and no
HTTP client. Every method validates its own input and raises :class:`SapixError` (status 400,
404, 409, 413) for bad requests, so hostile input never reaches storage.

Storage layout (every byte goes through ledgerstore):

- ``sapix/agents/{agent}``: one log per agent strand. Entry ``type`` is ``record``,
  ``tombstone`` or ``restore``; ``key`` is the record's content hash (hex), so a read by hash is
  an index lookup; ``subject`` is the original hash for tombstones and restores (so "is this
  hash deleted?" is an index lookup too); ``flags`` are the record flags. The entry payload is
  MessagePack: ``[1, timestamp_hlc, parent_hash(32 bytes), schema_version, collection|None,
  payload]`` where ``payload`` is the record's own MessagePack bytes (``payload_b64``).
  ``record_id`` is the entry's UUIDv7.
- ``sapix/graph/{graph}``: one entry per edge change: ``subject`` = src, ``key`` = dst,
  ``type`` = edge type, TOMBSTONE flag for a removal, MessagePack ``{"weight": w}``.
- ``sapix/_blobs``: raw bytes, ``key`` = BLAKE3 hex of the bytes.
- ``sapix/_keys``: API keys (the SHA-256 of each secret only), one full state per change.

The record envelope and its content hash (BLAKE3 over parent hash, HLC, flags, schema
version, collection and the MessagePack payload) are defined in :mod:`sapixdb.chain`;
:meth:`SapixEngine.verify` recomputes every hash and parent link.

The record's ``timestamp_hlc`` is chosen by the engine before the append, because the hash
covers it and ledgerstore fixes an entry's own HLC only inside its append:
``max(wall_ms << 16, parent entry's HLC + 1, parent record's HLC + 1)``. It therefore grows
strictly along a strand, and it never exceeds the entry's HLC (ledgerstore picks
``max(wall_ms << 16, last HLC + 1)`` a moment later). The append runs with a ``check`` that
fails if the strand grew since its head was read; the write is then recomputed and retried,
so concurrent writers (threads or processes) never fork a strand.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import blake3
import msgpack
import orjson

from ledgerstore import (
    Entry,
    EntryFilter,
    InvalidEntryError,
    LedgerStore,
    NewEntry,
    OperationalError,
    PayloadFormat,
    PayloadTooLargeError,
    Reader,
    UnknownLogError,
)
from sapixdb.chain import ENVELOPE_VERSION, Envelope, content_hash
from sapixdb.exceptions import SapixError, SapixNotFoundError
from sapixdb.filters import MISSING, Predicate, compile_filter, get_path
from sapixdb.hlc import to_hlc
from sapixdb.models import ZERO_HASH, iso_timestamp

__all__ = [
    "FLAG_BLOB_REF",
    "FLAG_GENESIS",
    "FLAG_MUTATION",
    "FLAG_TOMBSTONE",
    "MAX_EDGE_BATCH",
    "MAX_LIMIT",
    "MAX_WRITE_BATCH",
    "SapixEngine",
    "content_hash",
    "parse_time",
]

FLAG_GENESIS = 1
FLAG_TOMBSTONE = 2
FLAG_BLOB_REF = 4
FLAG_MUTATION = 8

MAX_LIMIT = 1000
DEFAULT_LIMIT = 20
MAX_DEPTH = 10
MAX_EDGE_BATCH = 10_000
#: Records per ``POST /v1/agents/{A}/records/batch`` (our server's limit; the engine's own
#: :meth:`SapixEngine.write_batch` takes any number, and the HTTP client sends chunks).
MAX_WRITE_BATCH = 10_000
WRITE_DEADLINE_SECONDS = 30.0
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,127}")
#: What agent, graph and collection names may hold (the 400 INVALID_NAME says it).
NAME_RULE = "use 1-128 letters, digits, '_', '.', ':', '@' or '-'"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AGENTS = "sapix/agents/"
_GRAPHS = "sapix/graph/"
_BLOBS = "sapix/_blobs"
_KEYS = "sapix/_keys"
_DATA_TYPES = frozenset({"record", "restore"})
_DIRECTIONS = frozenset({"outbound", "inbound", "both"})
_MISSING: Any = object()
_KEY_PREFIX = "sapix_sk_"
_U64 = 2**64
_HEAD_CACHE = 10_000


def bad_request(message: str, code: str = "BAD_REQUEST") -> SapixError:
    return SapixError(message, 400, code)


def too_many_edges() -> SapixError:
    """The 400 for an edge batch over :data:`MAX_EDGE_BATCH` (the client checks it too)."""
    return bad_request(
        f"at most {MAX_EDGE_BATCH} edges per request; split the batch", "TOO_MANY_EDGES"
    )


def too_many_records() -> SapixError:
    """The 400 for a record batch over :data:`MAX_WRITE_BATCH`."""
    return bad_request(
        f"at most {MAX_WRITE_BATCH} records per request; split the batch", "TOO_MANY_RECORDS"
    )


def parse_time(value: Any) -> int:
    """An HLC from an HLC int, a datetime or an ISO-8601 string; 400 otherwise."""
    try:
        return to_hlc(value)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def check_name(value: Any, what: str = "agent") -> str:
    """Agent, graph and collection names: 1-128 of ``A-Z a-z 0-9 _ . : @ -``, no ``..``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise bad_request(
            f"invalid {what} name: {NAME_RULE}",
            "INVALID_NAME",
        )
    return value


def _legacy_identity(payload: Any) -> tuple[type, str | int] | None:
    """Which record a legacy payload is a version of: its ``id`` field (legacy clients'
    convention); a payload without a string or integer ``id`` is a record of its own."""
    ident = payload.get("id") if isinstance(payload, dict) else None
    if isinstance(ident, str) or (isinstance(ident, int) and not isinstance(ident, bool)):
        return (type(ident), ident)
    return None


def _limit(value: Any, default: int = DEFAULT_LIMIT) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request("limit must be a non-negative integer")
    return min(value, MAX_LIMIT)


def _text(value: Any, what: str, *, limit: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise bad_request(f"{what} must be a non-empty string of at most {limit} characters")
    return value


def _json_value(value: Any) -> Any:
    """Normalise a payload to plain JSON, as a round trip over HTTP would."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise bad_request(f"payload is not JSON-serialisable: {exc}", "INVALID_PAYLOAD") from None


@dataclass(frozen=True, slots=True)
class _Item:
    """A record about to be appended."""

    payload: Any
    flags: int = 0
    type: str = "record"
    subject: str | None = None
    collection: str | None = None
    schema_version: int = 1


@dataclass(slots=True)
class _Unit:
    """One writer's records, queued for the next group commit."""

    agent: str
    items: list[_Item]
    done: bool = False
    written: list[Entry] = field(default_factory=list)
    error: BaseException | None = None


@dataclass(slots=True)
class _EdgeUnit:
    """One caller's graph entries, queued for the next group commit of graph entries."""

    entries: list[NewEntry]
    done: bool = False
    written: list[Entry] = field(default_factory=list)
    error: BaseException | None = None


class _StrandMoved(Exception):
    """The strand grew between reading its head and appending: recompute and retry."""


class SapixEngine:
    """SapixDB on one ledgerstore. Thread-safe; several engines may share a database.

    Methods take and return JSON-compatible values (the wire format's dictionaries).
    """

    def __init__(self, store: LedgerStore, *, server_agent: str = "sapixdb") -> None:
        self.store = store
        self.server_agent = server_agent
        # Serialises this process's writers so retries only happen across processes.
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Unit] = []
        self._heads: dict[str, Any] = {}
        self._edge_lock = threading.Lock()
        self._edge_queue: list[_EdgeUnit] = []
        self._keys_cache: tuple[int, dict[str, dict[str, Any]]] = (-1, {})
        self._keys_lock = threading.Lock()

    def close(self) -> None:
        """Close the underlying store."""
        self.store.close()

    # --- records --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "agent": …}`` once the store answers."""
        self.store.last_position()
        return {"status": "ok", "agent": self.server_agent}

    def write(self, agent: str, data: Any, *, collection: str | None = None) -> dict[str, Any]:
        """Append one record to ``agent``'s strand; returns the write response."""
        return self.write_batch(agent, [data], collection=collection)[0]

    def write_batch(
        self, agent: str, items: Sequence[Any], *, collection: str | None = None
    ) -> list[dict[str, Any]]:
        """Append several records atomically (one ledgerstore transaction), in order.

        Over the wire this is ``POST /v1/agents/{A}/records/batch``, our extension, which
        takes at most :data:`MAX_WRITE_BATCH` records per request.
        """
        check_name(agent)
        if collection is not None:
            check_name(collection, "collection")
        if not isinstance(items, list | tuple):
            raise bad_request("a batch is a list of records")
        records = [_Item(_json_value(data), collection=collection) for data in items]
        written = self._group_append(agent, records)
        return [self._write_response(record) for record in written]

    def get(self, agent: str, ref: str) -> dict[str, Any]:
        """One record by content hash or record id; 404 if the strand has no such record."""
        check_name(agent)
        entry = self._find(agent, ref)
        if entry is None:
            raise SapixNotFoundError(f"no record {ref!r} in agent {agent!r}", record_id=ref)
        return self._record(entry)

    def strand(self, agent: str, *, limit: Any = None, offset: Any = 0) -> dict[str, Any]:
        """Records oldest first from the 0-based ``offset``."""
        check_name(agent)
        count = _limit(limit, 100)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise bad_request("offset must be a non-negative integer")
        entries = self._read(agent, EntryFilter(seq_min=offset), limit=count) if count else []
        return {"records": [self._record(e) for e in entries]}

    def query(self, agent: str, body: Any) -> dict[str, Any]:
        """Run one query of the current protocol (``body["type"]`` names it)."""
        check_name(agent)
        if not isinstance(body, dict):
            raise bad_request("a query is a JSON object with a type")
        kind = body.get("type")
        handler = _QUERIES.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise bad_request(
                f"unknown query type; use one of {sorted(_QUERIES)}", "UNKNOWN_QUERY_TYPE"
            )
        return handler(self, agent, body)

    def _q_latest(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        count = _limit(body.get("limit"))
        match = compile_filter(body.get("filter"))
        return {"records": self._scan(agent, match, count)}

    def _q_scan(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        match = compile_filter(body.get("filter"))
        return {"records": self._scan(agent, match, _limit(body.get("limit")), data_only=True)}

    def _q_as_of(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        if "timestamp_hlc" not in body:
            raise bad_request("as_of needs timestamp_hlc")
        bound = parse_time(body["timestamp_hlc"])  # an HLC int (an ISO string is accepted too)
        return {"records": self.as_of(agent, bound, body.get("limit"), body.get("filter"))}

    def as_of(self, agent: str, hlc: int, limit: Any, filter_spec: Any) -> list[dict[str, Any]]:
        """The newest ``limit`` records written at or before ``hlc``, oldest first."""
        count = _limit(limit)
        match = compile_filter(filter_spec)
        end = self._count_at_or_before(agent, hlc)
        if end == 0 or count == 0:
            return []
        found = self._scan(
            agent, match, count, where=EntryFilter(seq_max=end - 1), data_only=match is not None
        )
        found.reverse()
        return found

    def _q_current(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        key = _text(body.get("key"), "key")
        records = self._current(
            agent, key, compile_filter(body.get("filter")), _limit(body.get("limit"))
        )
        return {"records": records}

    def _q_count_current(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        key = _text(body.get("key"), "key")
        return {"count": len(self._current(agent, key, compile_filter(body.get("filter")), None))}

    def _q_chain_head(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        head = next(iter(self._read(agent, None, reverse=True, limit=1)), None)
        records = [] if head is None else [self._record(head)]
        return {"records": records, "chain_head": head.key if head else ZERO_HASH}

    def _q_hash(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        ref = _text(body.get("content_hash"), "content_hash")
        entry = self._find(agent, ref)
        return {"records": [] if entry is None else [self._record(entry)]}

    def _q_time_range(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        bounds = []
        for name in ("from_ts", "to_ts"):
            value = body.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
                raise bad_request(f"{name} must be an HLC integer")
            bounds.append(value)
        first = self._count_at_or_before(agent, bounds[0] - 1) if bounds[0] > 0 else 0
        end = self._count_at_or_before(agent, bounds[1])
        count = _limit(body.get("limit"), MAX_LIMIT)
        if end <= first or count == 0:
            return {"records": []}
        where = EntryFilter(seq_min=first, seq_max=end - 1)
        return {"records": [self._record(e) for e in self._read(agent, where, limit=count)]}

    # --- tombstones -----------------------------------------------------------------------

    def delete(self, agent: str, ref: str) -> dict[str, Any]:
        """Append a TOMBSTONE record for the record ``ref`` names (nothing is erased)."""
        check_name(agent)
        target = self._find(agent, ref)
        if target is None:
            raise SapixNotFoundError(f"no record {ref!r} in agent {agent!r}", record_id=ref)
        if target.type not in _DATA_TYPES:
            raise bad_request("a tombstone cannot be deleted")
        original = target.key or ""

        def build() -> list[_Item]:
            if self._deleted_state(agent, original) == "tombstone":
                raise SapixError("the record is already deleted", 409, "ALREADY_DELETED")
            tomb = {"deleted": original, "deleted_record_id": target.id}
            return [_Item(tomb, FLAG_TOMBSTONE, "tombstone", original)]

        (written,) = self._append(agent, build)
        return {**self._write_response(written), "deleted": True, "original_hash": original}

    def list_deleted(self, agent: str) -> dict[str, Any]:
        """Records currently deleted, with the tombstone that deleted each."""
        check_name(agent)
        last: dict[str, Entry] = {}
        for entry in self._read(agent, EntryFilter(types=frozenset({"tombstone", "restore"}))):
            if entry.subject:
                last[entry.subject] = entry
        out = []
        for original, entry in last.items():
            if entry.type != "tombstone":
                continue
            target = self._find(agent, original)
            out.append(
                {
                    "tombstone_record_id": entry.id,
                    "tombstone_ts_ms": self._hlc(entry) >> 16,
                    "original_hash": original,
                    "original_record": None if target is None else self._record(target),
                }
            )
        return {"records": out}

    def restore(self, agent: str, ref: str) -> dict[str, Any]:
        """Re-append a deleted record's payload as a new record (flag MUTATION)."""
        check_name(agent)
        target = self._find(agent, ref)
        if target is None:
            raise SapixNotFoundError(f"no record {ref!r} in agent {agent!r}", record_id=ref)
        original = target.key or ""
        _, _, _, schema, collection, payload = self._envelope(target)

        def build() -> list[_Item]:
            if self._deleted_state(agent, original) != "tombstone":
                raise SapixError("the record is not deleted", 409, "NOT_DELETED")
            value = msgpack.unpackb(payload, raw=False)
            return [_Item(value, FLAG_MUTATION, "restore", original, collection, schema)]

        (written,) = self._append(agent, build)
        return {
            "restored": True,
            "original_hash": original,
            "new_content_hash": written.key,
            "new_record_id": written.id,
        }

    def _deleted_state(self, agent: str, original: str) -> str | None:
        where = EntryFilter(types=frozenset({"tombstone", "restore"}), subject=original)
        last = next(iter(self._read(agent, where, reverse=True, limit=1)), None)
        return None if last is None else last.type

    # --- verification and checkpoints -----------------------------------------------------

    def verify(self, agent: str) -> dict[str, Any]:
        """Recompute every content hash and parent link of a strand, then ledgerstore's chain."""
        check_name(agent)
        parent = bytes(32)
        last_hlc = -1
        checked = 0
        problem: str | None = None
        for entry in self._read(agent, None):
            _, hlc, stored_parent, schema, collection, payload = self._envelope(entry)
            expected = content_hash(
                parent=parent, hlc=hlc, flags=entry.flags, schema_version=schema,
                collection=collection, payload=payload,
            )  # fmt: skip
            if stored_parent != parent:
                problem = f"record {entry.seq} does not link to its predecessor"
            elif expected != entry.key:
                problem = f"record {entry.seq} does not match its content hash"
            elif hlc <= last_hlc:
                problem = f"record {entry.seq} is older than its predecessor"
            if problem:
                break
            parent, last_hlc, checked = bytes.fromhex(expected), hlc, checked + 1
        if problem is None and checked:
            report = self.store.verify(_AGENTS + agent)
            if not report.ok and report.problem is not None:
                problem = f"{report.problem.kind.value}: {report.problem.detail}"
        return {
            "agent": agent,
            "ok": problem is None,
            "records_checked": checked,
            "problem": problem,
        }

    def checkpoint(self) -> dict[str, Any]:
        """Compute every strand's Merkle tree head (ledgerstore persists the tree already)."""
        count = 0
        for info in self.store.logs():
            if info.name.startswith(_AGENTS):
                self.store.tree_head(info.name)
                count += 1
        return {"status": "ok", "agents_checkpointed": count}

    # --- graph ----------------------------------------------------------------------------

    def add_edge(
        self, graph: str, src: Any, dst: Any, edge_type: Any = "related", weight: Any = 1.0
    ) -> dict[str, Any]:
        """Add a typed, directed, weighted edge between two record ids (or content hashes)."""
        log = _GRAPHS + check_name(graph, "graph")
        (entry,) = self._append_edges([self._edge_entry(log, src, dst, edge_type, weight)])
        return {"created": True, **self._edge(entry)}

    def add_edges(self, graph: str, edges: Any) -> dict[str, Any]:
        """Add several edges at once: all or none, in one ledgerstore transaction.

        ``edges`` is a list of ``{"src", "dst", "edge_type", "weight"?}`` objects (at most
        :data:`MAX_EDGE_BATCH`), each validated and resolved exactly as :meth:`add_edge` does
        before anything is written; a bad edge fails the whole call with :meth:`add_edge`'s
        error, its message prefixed with ``edges[i]: ``. Returns ``{"edges": [edge, …]}`` in
        the order given. This is our extension of the wire (``POST /v1/{G}/graph/edges``).
        """
        log = _GRAPHS + check_name(graph, "graph")
        if not isinstance(edges, list | tuple):
            raise bad_request("edges must be a list of {src, dst, edge_type, weight} objects")
        if len(edges) > MAX_EDGE_BATCH:
            raise too_many_edges()
        # A content hash costs a lookup in every strand; a batch often names a node twice.
        node_id = lru_cache(maxsize=None)(self._node_id)
        entries = []
        for index, item in enumerate(edges):
            try:
                if not isinstance(item, dict):
                    raise bad_request("an edge is an object {src, dst, edge_type, weight}")
                src, dst = item.get("src"), item.get("dst")
                kind, weight = item.get("edge_type", "related"), item.get("weight", 1.0)
                entries.append(self._edge_entry(log, src, dst, kind, weight, node_id))
            except SapixError as exc:
                raise SapixError(f"edges[{index}]: {exc.message}", exc.status, exc.code) from None
        written = self._append_edges(entries)
        # The weights are the ones just encoded: no need to decode each stored payload back.
        return {
            "edges": [
                {"created": True, "src": entry.subject, "dst": entry.key, "edge_type": entry.type,
                 "weight": new.payload["weight"], "timestamp_hlc": entry.hlc}
                for entry, new in zip(written, entries, strict=True)
            ]
        }  # fmt: skip

    def _edge_entry(
        self,
        log: str,
        src: Any,
        dst: Any,
        edge_type: Any,
        weight: Any,
        node_id: Callable[[str], str] | None = None,
    ) -> NewEntry:
        """Validate one edge and resolve its ends: the graph entry to append (or a 400)."""
        resolve = node_id or self._node_id
        src_id = resolve(_text(src, "src"))
        dst_id = resolve(_text(dst, "dst"))
        kind = _text(edge_type, "edge_type", limit=128)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise bad_request("weight must be a number")
        try:
            value = float(weight)
        except OverflowError:  # an int beyond float's range
            value = math.inf
        if not math.isfinite(value):
            raise bad_request("weight must be finite")
        return NewEntry(log, {"weight": value}, PayloadFormat.MSGPACK, kind, src_id, dst_id)

    def _append_edges(self, entries: list[NewEntry]) -> list[Entry]:
        """Append graph entries as one unit, group-committed with concurrent callers' units.

        Like records (see :meth:`_group_append`): whoever holds the lock commits every queued
        unit in one transaction, so many concurrent ``add_edge`` and ``add_edges`` calls
        share a commit. A unit is never split: it is written whole or not at all.
        """
        if not entries:
            return []
        unit = _EdgeUnit(entries)
        with self._queue_lock:
            self._edge_queue.append(unit)
        with self._edge_lock:
            if not unit.done:
                with self._queue_lock:
                    batch, self._edge_queue = self._edge_queue, []
                self._commit_edges(batch)
        if unit.error is not None:
            raise unit.error
        return unit.written

    def _commit_edges(self, units: list[_EdgeUnit]) -> None:
        """Commit queued units (the edge lock is held): one transaction for all of them."""
        try:
            written = self.store.append_batch([new for unit in units for new in unit.entries])
            for unit in units:
                count = len(unit.entries)
                unit.written, written = written[:count], written[count:]
        except Exception as exc:
            if len(units) == 1:
                units[0].error = exc
            else:
                # One bad unit must not fail the others: commit them one by one.
                for unit in units:
                    try:
                        unit.written = self.store.append_batch(unit.entries)
                    except Exception as single:
                        unit.error = single
        finally:
            for unit in units:
                unit.done = True

    def remove_edge(self, graph: str, src: Any, dst: Any, edge_type: Any) -> dict[str, Any]:
        """Append a removal for an edge; ``removed`` says whether it existed."""
        log = _GRAPHS + check_name(graph, "graph")
        src_id = self._node_id(_text(src, "src"))
        dst_id = self._node_id(_text(dst, "dst"))
        kind = _text(edge_type, "edge_type", limit=128)
        existed = any(
            e["dst"] == dst_id and e["edge_type"] == kind for e in self._edges(graph, src_id, "out")
        )
        if existed:
            self.store.append(
                NewEntry(log, {"weight": 0.0}, PayloadFormat.MSGPACK, kind, src_id, dst_id,
                         FLAG_TOMBSTONE)
            )  # fmt: skip
        return {"removed": existed, "src": src_id, "dst": dst_id, "edge_type": kind}

    def edges(self, graph: str, node: Any) -> dict[str, Any]:
        """Every live outbound edge of ``node`` (what SapixDB's clients expect here)."""
        check_name(graph, "graph")
        return {"edges": self._edges(graph, self._node_id(_text(node, "id")), "out")}

    def traverse(
        self, graph: str, start: Any, *, depth: Any = 1, direction: Any = "outbound"
    ) -> dict[str, Any]:
        """Breadth-first from ``start`` up to ``depth`` hops, by indexed edge lookups."""
        check_name(graph, "graph")
        if isinstance(depth, str) and depth.isdigit():
            depth = int(depth)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
            raise bad_request(f"depth must be an integer from 0 to {MAX_DEPTH}")
        if direction not in _DIRECTIONS:
            raise bad_request("direction must be outbound, inbound or both")
        origin = self._node_id(_text(start, "id"))
        sides = {"outbound": ("out",), "inbound": ("in",), "both": ("out", "in")}[direction]
        seen = {origin: 0}
        order = [origin]
        edges: dict[tuple[str, str, str], dict[str, Any]] = {}
        queue = deque([origin])
        while queue:
            node = queue.popleft()
            if seen[node] >= depth:
                continue
            for side in sides:
                for edge in self._edges(graph, node, side):
                    edges.setdefault((edge["src"], edge["dst"], edge["edge_type"]), edge)
                    other = edge["dst"] if side == "out" else edge["src"]
                    if other not in seen:
                        seen[other] = seen[node] + 1
                        order.append(other)
                        queue.append(other)
        return {"nodes": [self._node(n) for n in order], "edges": list(edges.values())}

    def _edges(self, graph: str, node: str, side: str) -> list[dict[str, Any]]:
        where = EntryFilter(subject=node) if side == "out" else EntryFilter(key=node)
        try:
            entries = self.store.read(_GRAPHS + graph, where)
            live: dict[tuple[str, str, str], Entry] = {}
            for entry in entries:
                ident = (entry.subject or "", entry.key or "", entry.type or "")
                if entry.flags & FLAG_TOMBSTONE:
                    live.pop(ident, None)
                else:
                    live[ident] = entry
        except UnknownLogError:
            return []
        return [self._edge(e) for e in live.values()]

    def _edge(self, entry: Entry) -> dict[str, Any]:
        weight = entry.value().get("weight", 1.0)
        return {
            "src": entry.subject,
            "dst": entry.key,
            "edge_type": entry.type,
            "weight": weight,
            "timestamp_hlc": entry.hlc,
        }

    def _node_id(self, ref: str) -> str:
        """Graph ends are record ids; a content hash is resolved to its record's id."""
        if _HEX64.fullmatch(ref):
            entry = self._find_hash_anywhere(ref)
            if entry is not None:
                return entry.id
        return ref

    def _node(self, node_id: str) -> dict[str, Any]:
        try:
            entry = self.store.get(node_id)
        except InvalidEntryError:
            entry = None
        except ValueError:
            entry = None
        if entry is not None and entry.log.startswith(_AGENTS):
            return self._record(entry)
        # An id that names no record still shows up, so the edges it ends stay readable.
        return {"record_id": node_id, "id": node_id, "payload": None, "data": None}

    def _find_hash_anywhere(self, ref: str) -> Entry | None:
        for info in self.store.logs():
            if info.name.startswith(_AGENTS):
                where = EntryFilter(key=ref)
                entry = next(iter(self.store.read(info.name, where, limit=1)), None)
                if entry is not None:
                    return entry
        return None

    # --- streams --------------------------------------------------------------------------

    def stream(
        self,
        agents: Sequence[str] | None = None,
        *,
        since: Any = None,
        filter_field: Any = None,
        poll: float = 0.5,
    ) -> Iterator[dict[str, Any] | None]:
        """Events for every record written to ``agents`` (all agents if None).

        With ``since`` (an HLC; one agent only) the agent's records after it are replayed
        first, then live ones follow with no gap and no duplicate: both come from one
        ledgerstore subscription that starts just before the first record to replay. Yields
        None whenever ``poll`` seconds pass without an event (for heartbeats and cancellation).
        """
        names = None if agents is None else [check_name(a) for a in agents]
        if filter_field is not None:
            _text(filter_field, "filter")
        start = self.store.last_position()
        if since is not None:
            if names is None or len(names) != 1:
                raise bad_request("since needs exactly one agent")
            if isinstance(since, str) and since.isdigit():
                since = int(since)
            first_seq = self._count_at_or_before(names[0], parse_time(since))
            where = EntryFilter(seq_min=first_seq)
            first = next(iter(self._read(names[0], where, limit=1)), None)
            if first is not None:
                start = min(start, first.position - 1)
        logs = None if names is None else [_AGENTS + n for n in names]
        return self._events(logs, start, filter_field, poll)

    def _events(
        self, logs: list[str] | None, start: int, filter_field: str | None, poll: float
    ) -> Iterator[dict[str, Any] | None]:
        subscription = self.store.subscribe(logs, after_position=start, poll_interval=poll)
        try:
            while True:
                entry = subscription.next(poll)
                if entry is None:
                    yield None
                    continue
                if not entry.log.startswith(_AGENTS):
                    continue
                record = self._record(entry)
                payload = record["payload"]
                if filter_field is not None and get_path(payload, filter_field) is MISSING:
                    continue
                yield {
                    "agent_id": record["collection"],
                    "event_type": "record.written",
                    "record_id": record["record_id"],
                    "content_hash": record["content_hash"],
                    "timestamp_ms": record["timestamp_ms"],
                    "timestamp_hlc": record["timestamp_hlc"],
                    "payload": payload,
                }
        finally:
            subscription.close()

    # --- blobs ----------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> dict[str, Any]:
        """Store bytes once under their BLAKE3 hash."""
        if not isinstance(data, bytes | bytearray):
            raise bad_request("a blob is raw bytes")
        digest = blake3.blake3(bytes(data)).hexdigest()

        def fresh(reader: Reader) -> None:
            if reader.log_info(_BLOBS) and reader.count(_BLOBS, EntryFilter(key=digest)):
                raise _StrandMoved

        try:
            entry = self.store.append(
                NewEntry(_BLOBS, bytes(data), PayloadFormat.BYTES, "blob", None, digest),
                check=fresh,
            )
        except _StrandMoved:
            entry = next(iter(self.store.read(_BLOBS, EntryFilter(key=digest), limit=1)))
        except PayloadTooLargeError:
            raise SapixError(
                "the blob is larger than the store accepts", 413, "PAYLOAD_TOO_LARGE"
            ) from None
        return {
            "content_hash": digest,
            "size_bytes": len(entry.payload),
            "chunked": False,
            "encrypted": False,
            "strand_record_id": entry.id,
        }

    def get_blob(self, ref: str) -> bytes:
        """The bytes stored under a BLAKE3 hash; 404 if none."""
        if not isinstance(ref, str) or not _HEX64.fullmatch(ref):
            raise bad_request("a blob hash is 64 lowercase hex digits")
        try:
            entry = next(iter(self.store.read(_BLOBS, EntryFilter(key=ref), limit=1)), None)
        except UnknownLogError:
            entry = None
        if entry is None:
            raise SapixNotFoundError("no blob with that hash", record_id=ref)
        return entry.payload

    # --- API keys ---------------------------------------------------------------------------

    def create_key(
        self,
        *,
        label: Any = None,
        scopes: Any = None,
        expires_at_ms: Any = None,
        caller_id: Any = None,
        rate_limit_rps: Any = None,
    ) -> dict[str, Any]:
        """Create an API key; the secret is returned once, only its SHA-256 is stored."""
        secret = _KEY_PREFIX + secrets.token_hex(32)
        state = {
            "key_id": "key_" + secrets.token_hex(8),
            "key_hash": hashlib.sha256(secret.encode()).hexdigest(),
            "key_prefix": secret[:14],
            "label": "" if label is None else _text(label, "label"),
            "scopes": _scopes(["read:*"] if scopes is None else scopes),
            "created_at_ms": time.time_ns() // 1_000_000,
            "expires_at_ms": _optional_ms(expires_at_ms, "expires_at_ms"),
            "revoked": False,
            "caller_id": None if caller_id is None else _text(caller_id, "caller_id"),
            "rate_limit_rps": _optional_rps(rate_limit_rps),
            "deleted": False,
        }
        self._save_key(state)
        return {
            **key_view(state),
            "key": secret,
            "warning": "Store this key now: it is shown only once.",
        }

    def list_keys(self) -> dict[str, Any]:
        """Every key that is not deleted."""
        return {"keys": [key_view(s) for s in self._keys().values() if not s["deleted"]]}

    def get_key(self, key_id: str) -> dict[str, Any]:
        """One key's view; 404 if unknown or deleted."""
        return key_view(self._key_state(key_id))

    def update_key(self, key_id: str, changes: Any) -> dict[str, Any]:
        """Apply a PATCH: present keys change, an explicit null clears."""
        if not isinstance(changes, dict):
            raise bad_request("a key update is a JSON object")
        state = dict(self._key_state(key_id))
        parsers: dict[str, Callable[[Any], Any]] = {
            "label": lambda v: "" if v is None else _text(v, "label"),
            "scopes": lambda v: [] if v is None else _scopes(v),
            "expires_at_ms": lambda v: _optional_ms(v, "expires_at_ms"),
            "caller_id": lambda v: None if v is None else _text(v, "caller_id"),
            "rate_limit_rps": _optional_rps,
            "revoked": lambda v: _bool(v, "revoked"),
        }
        for name, value in changes.items():
            if name not in parsers:
                raise bad_request(f"unknown key field; updatable: {sorted(parsers)}")
            state[name] = parsers[name](value)
        self._save_key(state)
        return key_view(state)

    def delete_key(self, key_id: str) -> dict[str, Any]:
        """Revoke and hide a key for good."""
        state = {**self._key_state(key_id), "revoked": True, "deleted": True}
        self._save_key(state)
        return {"deleted": True, "key_id": key_id}

    def key_for_secret(self, secret: str) -> dict[str, Any] | None:
        """The stored state of the key with this secret (even revoked), or None."""
        digest = hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()
        for state in self._keys().values():
            if secrets.compare_digest(state["key_hash"], digest) and not state["deleted"]:
                return state
        return None

    def _key_state(self, key_id: Any) -> dict[str, Any]:
        state = self._keys().get(key_id) if isinstance(key_id, str) else None
        if state is None or state["deleted"]:
            raise SapixNotFoundError("no such API key", record_id=None)
        return state

    def _save_key(self, state: dict[str, Any]) -> None:
        self.store.append(NewEntry(_KEYS, state, PayloadFormat.JSON, "key", state["key_id"]))

    def _keys(self) -> dict[str, dict[str, Any]]:
        try:
            size = self.store.log_info(_KEYS).size
        except UnknownLogError:
            return {}
        with self._keys_lock:
            cached_size, cached = self._keys_cache
            if cached_size == size:
                return cached
            keys: dict[str, dict[str, Any]] = {}
            for entry in self.store.read(_KEYS, EntryFilter(seq_max=size - 1)):
                state = entry.value()
                keys[state["key_id"]] = state
            self._keys_cache = (size, keys)
            return keys

    # --- legacy protocol ----------------------------------------------------------------------

    def legacy_write(self, agent: str, body: Any) -> dict[str, Any]:
        """``POST /v1/{agent}/strand/write`` and ``/ingest``: a record in a collection."""
        if not isinstance(body, dict):
            raise bad_request("the body is {collection, data}")
        collection = check_name(body.get("collection", agent), "collection")
        if "data" not in body:
            raise bad_request("the body needs data")
        return self.write(agent, body["data"], collection=collection)

    def legacy_get(self, agent: str, record_id: str) -> dict[str, Any]:
        """``GET /v1/{agent}/strand/{record_id}``."""
        return self.get(agent, record_id)

    def legacy_query(self, agent: str, body: Any) -> dict[str, Any]:
        """``POST /v1/{agent}/strand/query``: collection, latest, equality filter, as_of."""
        check_name(agent)
        if not isinstance(body, dict):
            raise bad_request("a query is a JSON object")
        collection = body.get("collection")
        if collection is not None:
            check_name(collection, "collection")
        flt = body.get("filter")
        if flt is not None and not isinstance(flt, dict):
            raise bad_request("filter is an object of field: value pairs", "INVALID_FILTER")
        match = compile_filter(flt) if flt else None
        latest = body.get("latest", False)
        if not isinstance(latest, bool):
            raise bad_request("latest must be a boolean")
        count = _limit(body.get("limit"), MAX_LIMIT)  # legacy clients send no limit for "all"
        where = None
        if body.get("as_of") is not None:
            end = self._count_at_or_before(agent, parse_time(body["as_of"]))
            if end == 0:
                return {"results": [], "records": []}
            where = EntryFilter(seq_max=end - 1)
        deleted: set[str] = set()
        seen: set[tuple[type, str | int]] = set()  # record identities met (newest first)
        out: list[dict[str, Any]] = []
        for entry in self._read(agent, where, reverse=True):
            if len(out) >= count:
                break
            if entry.type == "tombstone":
                deleted.add(entry.subject or "")
                continue
            if latest and entry.key in deleted:
                continue
            record = self._record(entry)
            if collection is not None and record["collection"] != collection:
                continue
            if latest:
                # One version per record: the newest wins, and the filter sees only it.
                identity = _legacy_identity(record["payload"])
                if identity is not None:
                    if identity in seen:
                        continue
                    seen.add(identity)
            if match is None or match(record["payload"]):
                out.append(record)
        return {"results": out, "records": out}

    # --- internals ----------------------------------------------------------------------------

    def _read(
        self, agent: str, where: EntryFilter | None, *, reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:  # fmt: skip
        try:
            return self.store.read(_AGENTS + agent, where, reverse=reverse, limit=limit)
        except UnknownLogError:
            return iter(())

    def _find(self, agent: str, ref: Any) -> Entry | None:
        ref = _text(ref, "record reference")
        if _HEX64.fullmatch(ref):
            return next(iter(self._read(agent, EntryFilter(key=ref), limit=1)), None)
        try:
            entry = self.store.get(ref)
        except ValueError:
            return None
        if entry is None or entry.log != _AGENTS + agent:
            return None
        return entry

    def _scan(
        self,
        agent: str,
        match: Predicate | None,
        count: int,
        *,
        where: EntryFilter | None = None,
        data_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Up to ``count`` records newest first, optionally only data records that match."""
        out: list[dict[str, Any]] = []
        if count == 0:
            return out
        for entry in self._read(agent, where, reverse=True):
            if data_only and entry.type not in _DATA_TYPES:
                continue
            record = self._record(entry)
            if match is None or match(record["payload"]):
                out.append(record)
                if len(out) >= count:
                    break
        return out

    def _current(
        self, agent: str, key: str, match: Predicate | None, count: int | None
    ) -> list[dict[str, Any]]:
        deleted: set[str] = set()
        seen: set[bytes] = set()
        out: list[dict[str, Any]] = []
        for entry in self._read(agent, None, reverse=True):
            if entry.type == "tombstone":
                deleted.add(entry.subject or "")
                continue
            if entry.key in deleted:
                continue
            record = self._record(entry)
            value = get_path(record["payload"], key)
            if value is MISSING:
                continue
            ident = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
            if ident in seen:
                continue
            seen.add(ident)
            if match is None or match(record["payload"]):
                out.append(record)
                if count is not None and len(out) >= count:
                    break
        return out

    def _count_at_or_before(self, agent: str, hlc: int) -> int:
        """How many records of the strand have ``timestamp_hlc <= hlc`` (binary search).

        Record HLCs grow strictly along a strand, so they are a prefix of it.
        """
        try:
            size = self.store.log_info(_AGENTS + agent).size
        except UnknownLogError:
            return 0
        low, high = 0, size
        while low < high:
            middle = (low + high) // 2
            entry = next(iter(self._read(agent, EntryFilter(seq_min=middle), limit=1)))
            if self._hlc(entry) <= hlc:
                low = middle + 1
            else:
                high = middle
        return low

    def _group_append(self, agent: str, items: list[_Item]) -> list[Entry]:
        """Append ``items`` as one unit, group-committed with concurrent writers' units.

        Each writer queues its unit, then takes the write lock. Whoever holds the lock
        commits every queued unit — one ledgerstore transaction per strand — so writers
        arriving during a commit share the next one instead of paying a commit each. A unit
        is never split, and units keep their queue order.
        """
        unit = _Unit(agent, items)
        with self._queue_lock:
            self._queue.append(unit)
        with self._write_lock:
            if not unit.done:
                with self._queue_lock:
                    queued, self._queue = self._queue, []
                self._commit(queued)
        if unit.error is not None:
            raise unit.error
        return unit.written

    def _commit(self, units: list[_Unit]) -> None:
        """Commit queued units (the write lock is held): one transaction per strand."""
        by_agent: dict[str, list[_Unit]] = {}
        for unit in units:
            by_agent.setdefault(unit.agent, []).append(unit)
        for agent, group in by_agent.items():
            try:
                items = [item for unit in group for item in unit.items]
                written = self._append_locked(agent, partial(list, items))
                for unit in group:
                    unit.written, written = written[: len(unit.items)], written[len(unit.items) :]
            except Exception as exc:
                if len(group) == 1:
                    group[0].error = exc
                else:
                    # One bad unit must not fail the others: commit them one by one.
                    for unit in group:
                        try:
                            unit.written = self._append_locked(agent, partial(list, unit.items))
                        except Exception as single:
                            unit.error = single
            finally:
                for unit in group:
                    unit.done = True

    def _append(self, agent: str, build: Callable[[], list[_Item]]) -> list[Entry]:
        with self._write_lock:
            return self._append_locked(agent, build)

    def _append_locked(self, agent: str, build: Callable[[], list[_Item]]) -> list[Entry]:
        log = _AGENTS + agent
        deadline = time.monotonic() + WRITE_DEADLINE_SECONDS
        attempt = 0
        while True:
            # The head this process wrote last saves a read; the check below catches any
            # append from elsewhere, and the retry then reads the real head.
            head = self._heads.get(agent, _MISSING)
            if head is _MISSING:
                head = next(iter(self._read(agent, None, reverse=True, limit=1)), None)
            items = build()
            if not items:
                return []
            size = 0 if head is None else head.seq + 1
            entries = self._chain(log, head, items)

            def unchanged(reader: Reader, size: int = size) -> None:
                info = reader.log_info(log)
                if (0 if info is None else info.size) != size:
                    raise _StrandMoved

            try:
                written = self.store.append_batch(entries, check=unchanged)
            except (_StrandMoved, OperationalError):
                # Another process appended first (or the database was busy; nothing was
                # written either way): recompute on the new head. A growing random pause
                # keeps writers in lockstep from starving each other.
                self._heads.pop(agent, None)
                attempt += 1
                if time.monotonic() > deadline:
                    raise SapixError("the strand is too busy; retry", 503, "BUSY") from None
                if attempt > 1:
                    time.sleep(random.uniform(0, min(0.05, 0.001 * attempt)))
                continue
            except PayloadTooLargeError:
                raise SapixError(
                    "the record is larger than the store accepts", 413, "PAYLOAD_TOO_LARGE"
                ) from None
            if len(self._heads) >= _HEAD_CACHE:
                self._heads.clear()
            self._heads[agent] = written[-1]
            return written

    def _chain(self, log: str, head: Entry | None, items: list[_Item]) -> list[NewEntry]:
        wall = (time.time_ns() // 1_000_000) << 16
        if head is None:
            parent, hlc = bytes(32), wall
        else:
            parent = bytes.fromhex(head.key or ZERO_HASH)
            hlc = max(wall, head.hlc + 1, self._hlc(head) + 1)
        entries = []
        for index, item in enumerate(items):
            try:
                payload: bytes = msgpack.packb(item.payload, use_bin_type=True)
            except (TypeError, ValueError, OverflowError) as exc:
                raise bad_request(f"payload cannot be stored: {exc}", "INVALID_PAYLOAD") from None
            flags = item.flags | (FLAG_GENESIS if head is None and index == 0 else 0)
            digest = content_hash(
                parent=parent, hlc=hlc, flags=flags, schema_version=item.schema_version,
                collection=item.collection, payload=payload,
            )  # fmt: skip
            envelope = Envelope(
                ENVELOPE_VERSION, hlc, parent, item.schema_version, item.collection, payload
            )
            entry = NewEntry(
                log, envelope.value(), PayloadFormat.MSGPACK, item.type, item.subject, digest, flags
            )
            entries.append(entry)
            parent, hlc = bytes.fromhex(digest), hlc + 1
        return entries

    @staticmethod
    def _envelope(entry: Entry) -> Envelope:
        return Envelope.decode(entry.payload)

    def _hlc(self, entry: Entry) -> int:
        return self._envelope(entry).hlc

    def _record(self, entry: Entry) -> dict[str, Any]:
        _, hlc, parent, schema, collection, payload_bytes = self._envelope(entry)
        payload = msgpack.unpackb(payload_bytes, raw=False)
        agent = entry.log[len(_AGENTS) :]
        ms = hlc >> 16
        return {
            "record_id": entry.id,
            "content_hash": entry.key,
            "parent_hash": parent.hex(),
            "timestamp_hlc": hlc,
            "timestamp_ms": ms,
            "payload": payload,
            "payload_b64": base64.b64encode(payload_bytes).decode(),
            "flags": entry.flags,
            "schema_version": schema,
            "agent_id": agent,
            "id": entry.id,
            "hash": entry.key,
            "prev_hash": parent.hex(),
            "timestamp": iso_timestamp(ms),
            "data": payload,
            "collection": collection or agent,
        }

    def _write_response(self, entry: Entry) -> dict[str, Any]:
        record = self._record(entry)
        del record["payload_b64"]
        return {
            **record,
            "chain_head": entry.key,
            "codios_verified": None,
            "codios_mode": "open",
            "codios_contract_id": None,
        }


_QUERIES: dict[str, Callable[[SapixEngine, str, dict[str, Any]], dict[str, Any]]] = {
    "latest": SapixEngine._q_latest,
    "scan": SapixEngine._q_scan,
    "as_of": SapixEngine._q_as_of,
    "current": SapixEngine._q_current,
    "count_current": SapixEngine._q_count_current,
    "chain_head": SapixEngine._q_chain_head,
    "hash": SapixEngine._q_hash,
    "time_range": SapixEngine._q_time_range,
}


def key_view(state: dict[str, Any]) -> dict[str, Any]:
    """The public view of a key: never its hash or secret."""
    return {
        name: state[name]
        for name in (
            "key_id", "key_prefix", "label", "scopes", "created_at_ms", "expires_at_ms",
            "revoked", "caller_id", "rate_limit_rps",
        )
    }  # fmt: skip


def _scopes(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise bad_request("scopes is a list of 'verb:resource-glob' strings")
    for scope in value:
        verb, _, resource = scope.partition(":")
        if verb not in ("admin", "read", "write") or not resource or len(scope) > 256:
            raise bad_request("a scope is 'admin|read|write:resource-glob'")
    return list(value)


def _optional_ms(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
        raise bad_request(f"{what} must be milliseconds since the epoch or null")
    return value


def _optional_rps(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise bad_request("rate_limit_rps must be a positive number or null")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"{what} must be true or false")
    return value
