"""How Genesis DB lives in ledgerstore: log names, the stored record of an event, filters.

Log ``genesisdb/events`` holds one entry per event: entry ``type``/``subject`` are the
event's, entry ``key`` its id, and the payload the record ``{source, id, time, data |
ref: {id, digest, keys}, predecessorhash, hash}`` (JSON, key order kept). Subjects are
listed from that log's subject index; log ``genesisdb/types`` holds one entry (key = the
name) per first appearance of a type; ``genesisdb/schemas`` one entry per schema
registration. (Stores written before 2026-12 also have a ``genesisdb/subjects`` log, unused.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

import ledgerstore
from genesisdb import chain
from genesisdb.exceptions import BadRequestError, EventTooLargeError, GenesisDBError, StorageError
from ledgerstore import Entry, EntryFilter

__all__ = [
    "EVENTS_LOG",
    "SCHEMAS_LOG",
    "TYPES_LOG",
    "Bounds",
    "chunks",
    "entry_matches",
    "hashed_form",
    "storage_error",
    "stored_event",
    "under_filter",
]

EVENTS_LOG = "genesisdb/events"
TYPES_LOG = "genesisdb/types"
SCHEMAS_LOG = "genesisdb/schemas"


@dataclass(frozen=True, slots=True)
class Bounds:
    """Resolved stream options: position range, or ``empty`` when a bound names no event."""

    subject: str
    position_min: int | None
    position_max: int | None
    latest_type: str | None
    empty: bool


def under_filter(subject: str) -> EntryFilter:
    """Events at ``subject`` and below it; ``/`` is every event."""
    path = subject.rstrip("/")
    return EntryFilter() if not path else EntryFilter(subject_under=path)


def storage_error(exc: ledgerstore.LedgerStoreError) -> GenesisDBError:
    if isinstance(exc, ledgerstore.PayloadTooLargeError):
        return EventTooLargeError("the event is larger than the store accepts")
    if isinstance(exc, ledgerstore.InvalidArgumentError):
        return BadRequestError(f"the store rejected the request: {type(exc).__name__}")
    return StorageError(f"the storage engine failed: {type(exc).__name__}")


def entry_matches(entry: Entry, where: EntryFilter) -> bool:
    """``where``'s metadata conditions (the ones :meth:`Engine._select` scans for) in Python."""
    if where.types is not None and entry.type not in where.types:
        return False
    if where.subject is not None and entry.subject != where.subject:
        return False
    if where.key is not None and entry.key != where.key:
        return False
    if where.keys is not None and entry.key not in where.keys:
        return False
    if where.subjects is not None and entry.subject not in where.subjects:
        return False
    path = where.subject_under
    if path is not None:
        subject = entry.subject or ""
        base = path.rstrip("/")
        return subject == path or subject.startswith(base + "/")
    return True


def stored_event(
    entry: Entry, record: dict[str, Any], values: Mapping[str, bytes]
) -> dict[str, Any]:
    """The ten stored fields, in order; erased referenced data reads as its skeleton."""
    if "ref" in record:
        raw = values.get(record["ref"]["id"])
        data = record["ref"]["keys"] if raw is None else orjson.loads(raw)["data"]
    else:
        data = record["data"]
    return {
        "source": record["source"],
        "subject": entry.subject,
        "type": entry.type,
        "specversion": "1.0",
        "id": record["id"],
        "time": record["time"],
        "datacontenttype": "application/json",
        "predecessorhash": record["predecessorhash"],
        "data": data,
        "hash": record["hash"],
    }


def hashed_form(entry: Entry, record: dict[str, Any]) -> dict[str, Any]:
    """The event as its hash covers it: referenced data replaced by its commitment."""
    event = stored_event(entry, record, {})
    if "ref" in record:
        ref = record["ref"]
        event["data"] = chain.commitment(ref["id"], ref["digest"], ref["keys"])
    return event


def chunks(entries: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    batch: list[Entry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
