"""The Genesis DB engine: the one implementation of the semantics, on ledgerstore.

The embedded transport and the server's routes both call :class:`Engine`; it takes and returns
wire-shaped values (camelCase option keys, events as dicts with the ten stored fields) and
raises only :mod:`genesisdb.exceptions` errors. It imports no transport, web framework or HTTP
client.

Storage is ledgerstore only (the layout is in :mod:`genesisdb.storage`); restore checks live
in :mod:`genesisdb.backup`, per-event audit checks in :mod:`genesisdb.audit`, the change feed in
:mod:`genesisdb.observation`, request validation in :mod:`genesisdb.validation`.

Commits are optimistic over one store-wide lock: the event ids, times and hash chain are built
from a snapshot of the chain head, and the ``check`` that ledgerstore runs inside its write
lock re-reads the head (aborting and retrying when another writer moved it) and evaluates the
preconditions on the same transaction. So the chain never forks and a precondition and its
commit are one atomic step, across threads and processes. Times strictly increase in commit
order, which lets time ranges in queries become sequence ranges (a binary search).
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson
import uuid_utils

import ledgerstore
from genesisdb import chain, counting, schemas
from genesisdb.audit import audit_event
from genesisdb.backup import restored_entry
from genesisdb.exceptions import (
    BadRequestError,
    ConflictError,
    EventTooLargeError,
    InvalidEventError,
    NotFoundError,
    PreconditionFailedError,
    QueryBudgetError,
    QueryError,
    SchemaViolationError,
    StorageError,
)
from genesisdb.gdbql import (
    GdbqlError,
    GdbqlSyntaxError,
    Pushdown,
    Query,
    QueryBudget,
    QueryBudgetExceeded,
    parse,
    plan,
)
from genesisdb.gdbql import execute as execute_query
from genesisdb.gdbql.timestamps import format_instant, parse_instant
from genesisdb.observation import Observation
from genesisdb.storage import (
    EVENTS_LOG,
    SCHEMAS_LOG,
    TYPES_LOG,
    Bounds,
    chunks,
    entry_matches,
    storage_error,
    stored_event,
    under_filter,
)
from genesisdb.validation import json_object, not_canonical, subject_path, text
from ledgerstore import Entry, EntryFilter, LedgerStore, NewEntry, SideValue

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "ENGINE_VERSION",
    "EVENTS_LOG",
    "Engine",
    "Observation",
]

ENGINE_VERSION = "1.0.0"
DEFAULT_MAX_EVENT_BYTES = 64 * 1024
_COMMIT_ATTEMPTS = 200
_NO_ENTRY_HASH = bytes(32)  # ledgerstore's head hash of an empty log
_CHUNK = 256
_INDEX_PAGE = 500  # ledgerstore's page size: one page never pays the re-sorting
# Above SCAN_FACTOR * sqrt(log size) matches, scanning the log beats paging an index range.
_SCAN_FACTOR = 64
_MAX_COUNTED_GROUPS = 1000  # above this many types, counting per type costs more
_KNOWN_CACHE = 100_000
_KEYS_PER_LOOKUP = 500  # subjects checked in one query when a commit indexes new ones


# What queries read from: the store itself, or the Reader of a write transaction (the store
# reads the same way, so ledgerstore's Reader protocol covers both).
_Source = ledgerstore.Reader


class _StaleHead(Exception):
    """Another writer appended after the snapshot a commit was built on: rebuild and retry."""


@dataclass(frozen=True, slots=True)
class _Head:
    size: int
    entry_hash: bytes
    event_hash: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A validated event to commit, before it gets an id, a time and a place in the chain."""

    source: str
    subject: str
    type: str
    data: Any
    by_reference: bool


@dataclass(frozen=True, slots=True)
class _Precondition:
    index: int
    type: str
    payload: dict[str, Any]
    subject: str | None = None
    query: Query | None = None


class Engine:
    """Genesis DB semantics over one ledgerstore (see the module docstring).

    Thread-safe; every method is blocking. ``max_event_bytes`` caps one serialized event.
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        query_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.max_event_bytes = max_event_bytes
        #: The time budget of every GDBQL query, preconditions included (None: unbounded).
        self.query_seconds = query_seconds
        self.started = time.time()
        # Within a process commits queue here rather than retrying against each other.
        self._commit_lock = threading.Lock()
        self._last_head: _Head | None = None
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._schemas: dict[str, dict[str, Any]] = {}
        self._schemas_size = -1
        self._schema_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, **options: Any) -> Engine:
        """Open the store at ``url`` (``sqlite:///…``, ``postgresql://…`` or a path)."""
        try:
            store = ledgerstore.open_store(url)
        except ledgerstore.LedgerStoreError as exc:
            raise storage_error(exc) from exc
        return cls(store, **options)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    # --- commit ----------------------------------------------------------------------------

    def commit(self, events: object, preconditions: object = None) -> list[dict[str, Any]]:
        """Append ``events`` atomically if every precondition holds; returns them as stored."""
        if not isinstance(events, list) or not events:
            raise InvalidEventError("events must be a non-empty array")
        prepared = [self._prepare(index, event) for index, event in enumerate(events)]
        self._check_schemas(prepared)
        checks = self._preconditions(preconditions)
        with self._commit_lock:
            for _ in range(_COMMIT_ATTEMPTS):
                try:
                    return self._commit_once(prepared, checks)
                except _StaleHead:
                    self._last_head = None
                    continue
                except ledgerstore.LedgerStoreError as exc:
                    raise storage_error(exc) from exc
        raise StorageError("the store is too busy: the commit lost every retry to other writers")

    def _prepare(self, index: int, event: object) -> _Prepared:
        if not isinstance(event, dict):
            raise InvalidEventError(f"events[{index}] must be a JSON object")
        where = f"events[{index}]"
        source = text(event.get("source"), f"{where}.source", error=InvalidEventError)
        subject = subject_path(event.get("subject"), f"{where}.subject", error=InvalidEventError)
        event_type = text(event.get("type"), f"{where}.type", error=InvalidEventError)
        if "data" not in event:
            raise InvalidEventError(f"{where}.data is required")
        data = event["data"]
        options = event.get("options")
        if options is not None and not isinstance(options, dict):
            raise InvalidEventError(f"{where}.options must be a JSON object")
        by_reference = False
        if options:
            flag = options.get("storeDataAsReference", options.get("store_data_as_reference"))
            if flag is not None and not isinstance(flag, bool):
                raise InvalidEventError(f"{where}.options.storeDataAsReference must be a boolean")
            by_reference = bool(flag)
        try:
            size = len(orjson.dumps({"source": source, "subject": subject, "data": data}))
        except (TypeError, orjson.JSONEncodeError):
            raise InvalidEventError(f"{where}.data cannot be encoded as JSON") from None
        # The ten stored fields add about 400 bytes of type, ids, times and hashes.
        size += len(event_type.encode()) + 400
        if size > self.max_event_bytes:
            raise EventTooLargeError(
                f"{where} is {size} bytes serialized; the limit is {self.max_event_bytes}",
                details={"index": index, "size": size, "limit": self.max_event_bytes},
            )
        return _Prepared(source, subject, event_type, data, by_reference)

    def _preconditions(self, value: object) -> list[_Precondition]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise BadRequestError("preconditions must be an array")
        checks: list[_Precondition] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise BadRequestError(f"preconditions[{index}] must be a JSON object")
            kind = item.get("type")
            payload = item.get("payload")
            if not isinstance(payload, dict):
                raise BadRequestError(f"preconditions[{index}].payload must be a JSON object")
            if kind in ("isSubjectNew", "isSubjectExisting"):
                subject = subject_path(payload.get("subject"), f"preconditions[{index}].subject")
                checks.append(_Precondition(index, kind, payload, subject=subject))
            elif kind == "isQueryResultTrue":
                query = self._parse(payload.get("query"))
                checks.append(_Precondition(index, kind, payload, query=query))
            else:
                raise BadRequestError(
                    f"preconditions[{index}].type must be isSubjectNew, isSubjectExisting or "
                    "isQueryResultTrue"
                )
        return checks

    def _head(self) -> _Head:
        last = next(iter(self._read(self.store, EVENTS_LOG, None, reverse=True, limit=1)), None)
        if last is None:
            return _Head(0, _NO_ENTRY_HASH, chain.GENESIS, 0)
        payload = orjson.loads(last.payload)
        time_ns = parse_instant(payload["time"]) or 0
        return _Head(last.seq + 1, last.hash, payload["hash"], time_ns)

    def _commit_once(
        self, prepared: list[_Prepared], checks: list[_Precondition]
    ) -> list[dict[str, Any]]:
        # The head this process left is right unless another process appended since; the
        # check inside the lock catches that, and the retry reads the head afresh.
        head = self._last_head or self._head()
        now = max(time.time_ns(), head.time_ns + 1)
        previous = head.event_hash
        entries: list[NewEntry] = []
        side: list[SideValue] = []
        stored: list[dict[str, Any]] = []
        # Events of one commit are nanoseconds apart: format the shared second once.
        first = format_instant(now)
        if first is None:
            raise StorageError("the clock is outside years 0001–9999")
        second, first_nanos = first[:-11], now % 1_000_000_000
        for offset, item in enumerate(prepared):
            event_id = str(uuid_utils.uuid7())
            nanos = first_nanos + offset
            if nanos < 1_000_000_000:
                stamp = f"{second}.{nanos:09d}Z"
            else:
                later = format_instant(now + offset)
                if later is None:
                    raise StorageError("the clock is outside years 0001–9999")
                stamp = later
            event: dict[str, Any] = {
                "source": item.source,
                "subject": item.subject,
                "type": item.type,
                "specversion": "1.0",
                "id": event_id,
                "time": stamp,
                "datacontenttype": "application/json",
                "predecessorhash": previous,
            }
            record: dict[str, Any] = {"source": item.source, "id": event_id, "time": stamp}
            if item.by_reference:
                salt = secrets.token_bytes(16)
                reference = str(uuid_utils.uuid7())
                try:
                    digest = chain.salted_digest(salt, item.data)
                except InvalidEventError:
                    raise not_canonical(offset) from None
                keys = chain.skeleton(item.data)
                event["data"] = chain.commitment(reference, digest, keys)
                record["ref"] = {"id": reference, "digest": digest, "keys": keys}
                value = orjson.dumps({"salt": salt.hex(), "data": item.data})
                side.append(SideValue(reference, item.subject, value))
            else:
                event["data"] = item.data
                record["data"] = item.data
            try:
                event["hash"] = previous = chain.event_hash(event)
            except InvalidEventError:
                # Canonicalizing is the costly part of a commit, so it is done once, here.
                raise not_canonical(offset) from None
            record["predecessorhash"] = event["predecessorhash"]
            record["hash"] = event["hash"]
            event["data"] = item.data
            stored.append(event)
            entries.append(
                NewEntry(
                    EVENTS_LOG,
                    orjson.dumps(record),
                    ledgerstore.PayloadFormat.BYTES,
                    type=item.type,
                    subject=item.subject,
                    key=event_id,
                )
            )
        entries.extend(self._index_entries(prepared))

        def check(reader: ledgerstore.Reader) -> None:
            info = reader.log_info(EVENTS_LOG)
            size, entry_hash = (
                (0, _NO_ENTRY_HASH)
                if info is None
                else (
                    info.size,
                    info.head_hash,
                )
            )
            if (size, entry_hash) != (head.size, head.entry_hash):
                raise _StaleHead
            for condition in checks:
                self._evaluate(condition, reader)

        appended = self.store.append_batch(entries, side=side, check=check)
        last = appended[len(stored) - 1]
        self._last_head = _Head(
            last.seq + 1, last.hash, stored[-1]["hash"], parse_instant(stored[-1]["time"]) or 0
        )
        for entry in entries[len(stored) :]:
            self._remember(entry.log, entry.key or "")
        return stored

    def _index_entries(self, prepared: list[_Prepared]) -> list[NewEntry]:
        """Index entries for subjects and types this commit uses for the first time.

        Read before the lock; the head check in ``check`` makes them exact (an append that
        added the same subject would have moved the head).
        """
        new: list[NewEntry] = []
        # Subjects need no index entries: the events' own subject index answers for them.
        for log, names in ((TYPES_LOG, [item.type for item in prepared]),):
            unknown = [n for n in dict.fromkeys(names) if (log, n) not in self._known]
            for start in range(0, len(unknown), _KEYS_PER_LOOKUP):
                chunk = unknown[start : start + _KEYS_PER_LOOKUP]
                found = self._existing(log, frozenset(chunk))  # one indexed lookup per chunk
                for name in chunk:
                    if name in found:
                        self._remember(log, name)
                    else:
                        new.append(NewEntry(log, b"", ledgerstore.PayloadFormat.BYTES, key=name))
        return new

    def _existing(self, log: str, names: frozenset[str]) -> set[str]:
        try:
            return {entry.key or "" for entry in self.store.read(log, EntryFilter(keys=names))}
        except ledgerstore.UnknownLogError:
            return set()

    def _remember(self, log: str, name: str) -> None:
        self._known[(log, name)] = None
        if len(self._known) > _KNOWN_CACHE:
            self._known.popitem(last=False)

    def _evaluate(self, condition: _Precondition, reader: _Source) -> None:
        if condition.subject is not None:
            found = self._count(reader, EVENTS_LOG, under_filter(condition.subject)) > 0
            holds = found if condition.type == "isSubjectExisting" else not found
        else:
            assert condition.query is not None
            holds = self._truthy(condition.query, reader)
        if not holds:
            raise PreconditionFailedError(
                f"precondition {condition.index} ({condition.type}) failed",
                details={
                    "index": condition.index,
                    "type": condition.type,
                    "payload": condition.payload,
                },
            )

    def _truthy(self, query: Query, source: _Source) -> bool:
        rows = self._rows(query, source, self.budget())
        try:
            for row in rows:
                return _is_truthy(row)
            return False
        finally:
            rows.close()

    # --- schemas ---------------------------------------------------------------------------

    def register_schema(self, event_type: object, schema: object) -> dict[str, Any]:
        """Register (or replace) the schema that commits of ``event_type`` must satisfy."""
        name = text(event_type, "type")
        definition = schemas.check_schema(schema)
        try:
            self.store.append(
                NewEntry(SCHEMAS_LOG, {"type": name, "schema": definition}, type=name)
            )
        except ledgerstore.LedgerStoreError as exc:
            raise storage_error(exc) from exc
        return {"type": name, "schema": definition}

    def get_schema(self, event_type: object) -> dict[str, Any]:
        """The schema registered for ``event_type``; NotFoundError when there is none."""
        name = text(event_type, "type")
        schema = self._schema_map().get(name)
        if schema is None:
            raise NotFoundError("no schema is registered for this type")
        return {"type": name, "schema": schema}

    def _schema_map(self) -> dict[str, dict[str, Any]]:
        with self._schema_lock:
            size = self._log_size(self.store, SCHEMAS_LOG)
            if size != self._schemas_size:
                found: dict[str, dict[str, Any]] = {}
                for entry in self._read(self.store, SCHEMAS_LOG, None):
                    value = entry.value()
                    found[value["type"]] = value["schema"]
                self._schemas, self._schemas_size = found, size
            return self._schemas

    def _check_schemas(self, prepared: list[_Prepared]) -> None:
        registered = self._schema_map()
        if not registered:
            return
        for index, item in enumerate(prepared):
            schema = registered.get(item.type)
            if schema is None:
                continue
            problems = schemas.violations(schema, item.data)
            if problems:
                raise SchemaViolationError(
                    f"events[{index}] violates the schema of its type",
                    details={"index": index, "type": item.type, "violations": problems},
                )

    # --- reads -----------------------------------------------------------------------------

    def stream(self, subject: object, options: object = None) -> Iterator[dict[str, Any]]:
        """The events at ``subject`` and below, oldest first, within the options' bounds.

        Validates eagerly (errors raise here, not while iterating).
        """
        bounds = self._bounds(subject, options)
        return self._guarded(self._stream(bounds, self.store))

    def _bounds(self, subject: object, options: object) -> Bounds:
        path = subject_path(subject)
        opts = json_object(options, "options")
        lower, upper = opts.get("lowerBound"), opts.get("upperBound")
        latest = opts.get("latestByEventType")
        for name in ("includeLowerBoundEvent", "includeUpperBoundEvent"):
            if opts.get(name) is not None and not isinstance(opts.get(name), bool):
                raise BadRequestError(f"options.{name} must be a boolean")
        if latest is not None:
            latest = text(latest, "options.latestByEventType")
        empty = False
        position_min = position_max = None
        try:
            if lower is not None:
                found = self._position_of(lower, "options.lowerBound")
                empty = empty or found is None
                if found is not None:
                    position_min = found if opts.get("includeLowerBoundEvent") else found + 1
            if upper is not None:
                found = self._position_of(upper, "options.upperBound")
                empty = empty or found is None
                if found is not None:
                    position_max = found if opts.get("includeUpperBoundEvent") else found - 1
        except ledgerstore.LedgerStoreError as exc:
            raise storage_error(exc) from exc
        return Bounds(path, position_min, position_max, latest, empty)

    def _position_of(self, event_id: object, what: str) -> int | None:
        if not isinstance(event_id, str) or not event_id:
            raise BadRequestError(f"{what} must be an event id")
        try:
            canonical_id = str(uuid_utils.UUID(event_id))
        except ValueError:
            raise BadRequestError(f"{what} must be an event id (a UUID)") from None
        where = EntryFilter(key=canonical_id)
        entry = next(iter(self._read(self.store, EVENTS_LOG, where, limit=1)), None)
        return None if entry is None else entry.position

    def _stream(self, bounds: Bounds, source: _Source) -> Iterator[dict[str, Any]]:
        if bounds.empty:
            return
        under = under_filter(bounds.subject)
        where = EntryFilter(
            subject_under=under.subject_under,
            position_min=bounds.position_min,
            position_max=bounds.position_max,
            types=None if bounds.latest_type is None else frozenset([bounds.latest_type]),
        )
        if bounds.latest_type is None:
            yield from self._events(self._select(source, where))
            return
        # Newest first, keeping the first seen per subject: memory grows with subjects only.
        seen: set[str] = set()
        latest: list[Entry] = []
        for entry in self._select(source, where, reverse=True):
            if entry.subject not in seen:
                seen.add(entry.subject or "")
                latest.append(entry)
        latest.reverse()
        yield from self._events(iter(latest))

    def _guarded(self, rows: Iterator[Any]) -> Iterator[Any]:
        """Map storage errors raised while iterating to SDK errors."""
        try:
            yield from rows
        except ledgerstore.LedgerStoreError as exc:
            raise storage_error(exc) from exc

    def _events(self, entries: Iterator[Entry]) -> Iterator[dict[str, Any]]:
        """Stored events from entries, fetching referenced data one chunk at a time."""
        batch: list[Entry] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) >= _CHUNK:
                yield from self._decode_batch(batch)
                batch = []
        if batch:
            yield from self._decode_batch(batch)

    def _decode_batch(self, batch: list[Entry]) -> list[dict[str, Any]]:
        records = [orjson.loads(entry.payload) for entry in batch]
        refs = [record["ref"]["id"] for record in records if "ref" in record]
        values = self.store.side_get(refs) if refs else {}
        return [
            stored_event(entry, record, values)
            for entry, record in zip(batch, records, strict=True)
        ]

    def observe(self, subject: object, options: object = None) -> Observation:
        """Replay the matching events from ``lowerBound`` (none without one), then follow live."""
        bounds = self._bounds(subject, options)
        try:
            start = self.store.last_position()
        except ledgerstore.LedgerStoreError as exc:
            raise storage_error(exc) from exc
        opts = json_object(options, "options")
        replay: Iterator[dict[str, Any]] = iter(())
        if opts.get("lowerBound") is not None and not bounds.empty:
            limit = start if bounds.position_max is None else min(start, bounds.position_max)
            replay_bounds = Bounds(
                bounds.subject, bounds.position_min, limit, bounds.latest_type, False
            )
            replay = self._guarded(self._stream(replay_bounds, self.store))
        end = None
        if opts.get("upperBound") is not None:
            end = -1 if bounds.empty or bounds.position_max is None else bounds.position_max
        return Observation(self.store, self._decode_batch, bounds, replay, start, end)

    # --- GDBQL -----------------------------------------------------------------------------

    def _parse(self, query: object) -> Query:
        if not isinstance(query, str) or not query.strip():
            raise QueryError("query must be a non-empty string")
        if len(query) > 100_000:
            raise QueryError("query is longer than 100,000 characters")
        try:
            return parse(query)
        except GdbqlError as exc:
            details: dict[str, Any] = {
                "position": exc.position,
                "line": exc.line,
                "column": exc.column,
            }
            if isinstance(exc, GdbqlSyntaxError):
                details["expected"] = exc.expected
            raise QueryError(str(exc), details=details) from None
        except RecursionError:
            raise QueryError("query is nested too deeply") from None

    def budget(self) -> QueryBudget:
        """A fresh budget for one query, bounded by :attr:`query_seconds`."""
        return QueryBudget(seconds=self.query_seconds)

    def query(self, query: object, *, budget: QueryBudget | None = None) -> Iterator[Any]:
        """The rows of a GDBQL query (parsed eagerly: a bad query raises QueryError here).

        Evaluation stops with :class:`QueryBudgetError` past ``budget`` (by default
        :meth:`budget`), or when the budget is cancelled.
        """
        parsed = self._parse(query)
        return self._guarded(self._rows(parsed, self.store, budget or self.budget()))

    def _rows(
        self, query: Query, source: _Source, budget: QueryBudget
    ) -> Generator[Any, None, None]:
        planned = plan(query)
        pushdown = planned.pushdown
        where = self._filter(pushdown, source)
        if where is None:
            events: Iterator[dict[str, Any]] = iter(())
        elif pushdown.count_only:
            yield self._count(source, EVENTS_LOG, where)
            return
        else:
            rewritten = counting.count_rewrite(planned.residual, planned.where_fully_pushed)
            counted = None if rewritten is None else self._group_counts(rewritten, where, source)
            if rewritten is not None and counted is not None:
                yield from _safe_rows(execute_query(rewritten, iter(counted), budget=budget))
                return
            events = self._events(self._select(source, where, limit=pushdown.limit))
        yield from _safe_rows(execute_query(planned.residual, events, budget=budget))

    def _group_counts(
        self, query: Query, where: EntryFilter, source: _Source
    ) -> list[dict[str, Any]] | None:
        """Synthetic count events for :mod:`genesisdb.counting`, None when too many groups."""
        if query.group_by is None:
            total = self._count(source, EVENTS_LOG, where)
            return [counting.synthetic_event(total)] if total else []
        candidates = (
            sorted(where.types)
            if where.types is not None
            else [entry.key or "" for entry in self._read(source, TYPES_LOG, None)]
        )
        if len(candidates) > _MAX_COUNTED_GROUPS:
            return None
        groups: list[tuple[int, dict[str, Any]]] = []
        for name in candidates:
            narrowed = dataclasses.replace(where, types=frozenset([name]))
            first = next(iter(self._read(source, EVENTS_LOG, narrowed, limit=1)), None)
            if first is not None:
                count = self._count(source, EVENTS_LOG, narrowed)
                groups.append((first.position, counting.synthetic_event(count, name)))
        return [event for _, event in sorted(groups, key=lambda group: group[0])]

    def _filter(self, pushdown: Pushdown, source: _Source) -> EntryFilter | None:
        """The pushdown as an EntryFilter, or None when it matches no event."""
        if pushdown.matches_nothing:
            return None
        seq_min = seq_max = None
        if pushdown.time_min is not None or pushdown.time_max is not None:
            size = self._log_size(source, EVENTS_LOG)
            if pushdown.time_min is not None:
                seq_min = self._first_seq(
                    source, size, pushdown.time_min, after=not pushdown.time_min_inclusive
                )
            if pushdown.time_max is not None:
                seq_max = (
                    self._first_seq(
                        source, size, pushdown.time_max, after=pushdown.time_max_inclusive
                    )
                    - 1
                )
            if (seq_min or 0) > (size - 1 if seq_max is None else seq_max):
                return None
        under = None if pushdown.subject_under is None else under_filter(pushdown.subject_under)
        return EntryFilter(
            types=pushdown.types,
            subject=pushdown.subject_exact,
            subjects=pushdown.subjects,
            subject_under=None if under is None else under.subject_under,
            key=pushdown.id_eq,
            seq_min=seq_min,
            seq_max=seq_max,
        )

    def _first_seq(self, source: _Source, size: int, bound: str, *, after: bool) -> int:
        """The first sequence number whose time is ≥ bound (> bound with ``after``).

        Event times strictly increase with the sequence, so this is a binary search of
        O(log n) indexed point reads.
        """
        target = parse_instant(bound)
        assert target is not None
        low, high = 0, size
        while low < high:
            middle = (low + high) // 2
            entry = next(
                iter(self._read(source, EVENTS_LOG, EntryFilter(seq_min=middle, seq_max=middle))),
                None,
            )
            stamp = None if entry is None else parse_instant(orjson.loads(entry.payload)["time"])
            if stamp is None or stamp > target or (stamp == target and not after):
                high = middle
            else:
                low = middle + 1
        return low

    # --- erase, audit, status --------------------------------------------------------------

    def erase(self, subject: object) -> int:
        """Erase the referenced data of every event at ``subject`` and below; returns the count."""
        path = subject_path(subject)
        try:
            # ledgerstore's subject_under is segment-aware; "/" covers every subject.
            return self.store.side_erase(subject_under=path.rstrip("/") or "/")
        except ledgerstore.LedgerStoreError as exc:
            raise storage_error(exc) from exc

    def audit(self) -> dict[str, Any]:
        """Recompute the global hash chain (and ledgerstore's own verification).

        ``{"valid", "events", "firstInvalid", "errors"}``; ``errors`` holds at most 100 items.
        """
        errors: list[dict[str, Any]] = []
        first_invalid: str | None = None
        previous, previous_time, count = chain.GENESIS, -1, 0
        try:
            for batch in chunks(self._read(self.store, EVENTS_LOG, None), _CHUNK):
                records = [orjson.loads(entry.payload) for entry in batch]
                refs = [record["ref"]["id"] for record in records if "ref" in record]
                values = self.store.side_get(refs) if refs else {}
                for entry, record in zip(batch, records, strict=True):
                    count += 1
                    problems = audit_event(entry, record, values, previous, previous_time)
                    if problems:
                        first_invalid = first_invalid or record.get("id")
                        if len(errors) < 100:
                            errors.extend({"id": record.get("id"), "error": p} for p in problems)
                    previous = record.get("hash", "")
                    previous_time = parse_instant(str(record.get("time"))) or previous_time
            size = self._log_size(self.store, EVENTS_LOG)
            if size:
                report = self.store.verify(EVENTS_LOG)
                if not report.ok and report.problem is not None:
                    problem = report.problem
                    errors.append(
                        {"id": problem.entry_id, "error": f"{problem.kind}: {problem.detail}"}
                    )
        except ledgerstore.LedgerStoreError as exc:
            raise storage_error(exc) from exc
        return {
            "valid": not errors,
            "events": count,
            "firstInvalid": first_invalid,
            "errors": errors[:100],
        }

    def subjects(self) -> list[str]:
        """Every subject that has an event, sorted."""
        try:
            return self.store.subjects(EVENTS_LOG)
        except ledgerstore.UnknownLogError:
            return []

    def types(self) -> list[str]:
        """Every event type that has been committed, sorted."""
        return sorted(entry.key or "" for entry in self._read(self.store, TYPES_LOG, None))

    def status(self) -> dict[str, Any]:
        """Engine, system, license and event counts."""
        try:
            counts = {
                "count": self._log_size(self.store, EVENTS_LOG),
                "subjects": self._subject_count(),
                "types": self._log_size(self.store, TYPES_LOG),
                "storageSize": self._storage_size(),
            }
        except ledgerstore.LedgerStoreError as exc:
            raise storage_error(exc) from exc
        return {
            "engine": {"version": ENGINE_VERSION, "edition": "community", "channel": "stable"},
            "system": {
                "python": platform.python_version(),
                "platform": sys.platform,
                "pid": os.getpid(),
                "uptimeSeconds": round(time.time() - self.started, 3),
                "storage": self.store.url.split(":", 1)[0],
            },
            "license": {"status": "valid", "validUntil": None},
            "events": counts,
        }

    def _storage_size(self) -> int | None:
        path = getattr(self.store, "path", None)
        if path is None:
            return None
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(f"{path}{suffix}")
            except OSError:
                continue
        return total

    # --- backup and restore ----------------------------------------------------------------

    def backup(self) -> Iterator[dict[str, Any]]:
        """Every event as stored, oldest first; referenced events carry ``reference``.

        ``reference`` is ``{"id", "digest", "salt"}`` (salt null once erased), which is what
        :meth:`restore` needs to rebuild the commitment the hash covers.
        """
        return self._guarded(self._backup())

    def _backup(self) -> Iterator[dict[str, Any]]:
        for batch in chunks(self._read(self.store, EVENTS_LOG, None), _CHUNK):
            records = [orjson.loads(entry.payload) for entry in batch]
            refs = [record["ref"]["id"] for record in records if "ref" in record]
            values = self.store.side_get(refs) if refs else {}
            for entry, record in zip(batch, records, strict=True):
                event = stored_event(entry, record, values)
                if "ref" in record:
                    raw = values.get(record["ref"]["id"])
                    salt = None if raw is None else orjson.loads(raw)["salt"]
                    event["reference"] = {
                        "id": record["ref"]["id"],
                        "digest": record["ref"]["digest"],
                        "salt": salt,
                    }
                yield event

    def restore(self, events: object) -> int:
        """Load a backup into an empty store after re-verifying its chain; returns the count."""
        if not isinstance(events, list):
            raise BadRequestError("a backup is a JSON array of events")
        entries: list[NewEntry] = []
        side: list[SideValue] = []
        previous, previous_time = chain.GENESIS, -1
        for index, event in enumerate(events):
            entry, value, previous_time = restored_entry(index, event, previous, previous_time)
            previous = event["hash"]
            entries.append(entry)
            if value is not None:
                side.append(value)
        types = dict.fromkeys(entry.type or "" for entry in entries)
        entries += [NewEntry(TYPES_LOG, b"", key=name) for name in types]

        def check(reader: ledgerstore.Reader) -> None:
            info = reader.log_info(EVENTS_LOG)
            if info is not None and info.size:
                raise ConflictError("restore needs an empty store")

        if not events:
            return 0
        with self._commit_lock:
            self._last_head = None
            try:
                self.store.append_batch(entries, side=side, check=check)
            except ledgerstore.LedgerStoreError as exc:
                raise storage_error(exc) from exc
        return len(events)

    # --- storage access --------------------------------------------------------------------

    @staticmethod
    def _read(
        source: _Source,
        log: str,
        where: EntryFilter | None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        """Entries of ``log``; a log that does not exist yet is empty."""
        try:
            yield from source.read(log, where, reverse=reverse, limit=limit)
        except ledgerstore.UnknownLogError:
            return

    def _select(
        self,
        source: _Source,
        where: EntryFilter,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        """Events matching ``where`` in commit order, by the cheaper of two plans.

        ledgerstore pages through a subject range, several types or several subjects on their
        metadata index and sorts each page's whole range by position: a cost that grows with
        the square of the matches. For many matches, scanning the log in order (within its
        position and sequence bounds) and filtering here is far cheaper; for few, the index
        wins.
        """
        ranged = (
            where.subject_under is not None
            or (where.types is not None and len(where.types) > 1)
            or (where.subjects is not None and len(where.subjects) > 1)
        )
        if not ranged or (limit is not None and limit <= _INDEX_PAGE):
            return self._read(source, EVENTS_LOG, where, reverse=reverse, limit=limit)
        matching = self._count(source, EVENTS_LOG, where)
        total = self._log_size(source, EVENTS_LOG)
        if matching <= _SCAN_FACTOR * math.isqrt(total):
            return self._read(source, EVENTS_LOG, where, reverse=reverse, limit=limit)
        bounds = EntryFilter(
            seq_min=where.seq_min,
            seq_max=where.seq_max,
            position_min=where.position_min,
            position_max=where.position_max,
        )
        scan = self._read(source, EVENTS_LOG, bounds, reverse=reverse)
        found = (entry for entry in scan if entry_matches(entry, where))
        return found if limit is None else islice(found, limit)

    @staticmethod
    def _count(source: _Source, log: str, where: EntryFilter | None) -> int:
        try:
            return source.count(log, where)
        except ledgerstore.UnknownLogError:
            return 0

    def _subject_count(self) -> int:
        try:
            return self.store.subject_count(EVENTS_LOG)
        except ledgerstore.UnknownLogError:
            return 0

    @staticmethod
    def _log_size(source: _Source, log: str) -> int:
        info_of = getattr(source, "log_info", None)
        if info_of is None:
            return 0
        try:
            info = info_of(log)
        except ledgerstore.UnknownLogError:
            return 0
        return 0 if info is None else int(info.size)


def _safe_rows(rows: Iterator[Any]) -> Iterator[Any]:
    """Rows of a query; an evaluation failure is the query's fault, so a QueryError."""
    try:
        yield from rows
    except GdbqlError as exc:
        raise QueryError(str(exc)) from None
    except QueryBudgetExceeded as exc:
        raise QueryBudgetError(str(exc), details={"cancelled": exc.cancelled}) from None
    except (RecursionError, OverflowError, MemoryError):
        raise QueryError("the query cannot be evaluated: a value grew too large") from None


def _is_truthy(value: Any) -> bool:
    """GDBQL truthiness: null, false, 0, "", [] and {} are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str | list | dict):
        return bool(value)
    return True
