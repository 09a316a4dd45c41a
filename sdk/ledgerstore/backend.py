"""The small interface every ledgerstore backend implements, its value types and its errors.

A store holds named append-only logs. Each entry has a gap-free sequence number within its log,
a global position across logs (commit order), a hybrid logical clock timestamp, a UUIDv7 id,
indexable metadata (``type``, ``subject``, ``key``, ``flags``), a payload, and a SHA-256 hash
that chains it to its predecessor. An RFC 9162 Merkle tree is kept over every log. Beside the
logs sits an erasable side store: values the logs only commit to (by a salted hash the caller
computes), deletable on request.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import msgpack
import orjson

# ---------------------------------------------------------------------------------------------
# Errors: one tree, named after PEP 249's, into which each driver's errors are mapped.


class LedgerStoreError(Exception):
    """Base of every error ledgerstore raises."""


class InterfaceError(LedgerStoreError):
    """The store was used wrongly (closed, bad arguments)."""


class StoreClosedError(InterfaceError):
    """The store has been closed."""


class InvalidArgumentError(InterfaceError, ValueError):
    """An argument has the wrong type or is out of range."""


class InvalidEntryError(InvalidArgumentError):
    """An entry or a side value has the wrong type or shape."""


class PayloadTooLargeError(InvalidEntryError):
    """A payload or side value is larger than the store accepts."""


class UnknownLogError(LedgerStoreError, LookupError):
    """A read named a log that does not exist."""

    def __init__(self, log: str) -> None:
        super().__init__(f"no log named {log!r}")
        self.log = log


class DatabaseError(LedgerStoreError):
    """The database failed; the operation had no effect."""


class OperationalError(DatabaseError):
    """The database could not be reached or was busy (usually worth retrying)."""


class IntegrityError(DatabaseError):
    """A constraint was violated (for example a duplicate side-store reference)."""


class DataError(DatabaseError):
    """The database rejected a value."""


class ProgrammingError(DatabaseError):
    """The schema is missing or wrong (a migration did not run, or a newer one did)."""


class InternalError(DatabaseError):
    """The database reported an internal error."""


class NotSupportedError(DatabaseError):
    """The database does not support an operation."""


# ---------------------------------------------------------------------------------------------
# Value types.


class PayloadFormat(enum.IntEnum):
    """How an entry's payload bytes are encoded."""

    BYTES = 0
    JSON = 1
    MSGPACK = 2


def encode_payload(value: Any, fmt: PayloadFormat) -> bytes:
    """Encode a payload value; JSON is encoded deterministically (sorted keys, UTF-8)."""
    if fmt is PayloadFormat.BYTES:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise InvalidEntryError(f"a BYTES payload must be bytes, not {type(value).__name__}")
        return bytes(value)
    try:
        if fmt is PayloadFormat.JSON:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        packed: bytes = msgpack.packb(value, use_bin_type=True)
        return packed
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidEntryError(f"payload cannot be encoded as {fmt.name}: {exc}") from None


def decode_payload(data: bytes, fmt: PayloadFormat) -> Any:
    if fmt is PayloadFormat.JSON:
        return orjson.loads(data)
    if fmt is PayloadFormat.MSGPACK:
        return msgpack.unpackb(data, raw=False)
    return data


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry to append. ``payload`` is bytes, or a value encoded as ``format``.

    When ``format`` is left out, bytes are stored as BYTES and anything else as JSON.
    """

    log: str
    payload: Any
    format: PayloadFormat | None = None
    type: str | None = None
    subject: str | None = None
    key: str | None = None
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored entry. Every field but ``hash`` is covered by ``hash``."""

    log: str
    seq: int
    position: int
    hlc: int
    id: str
    type: str | None
    subject: str | None
    key: str | None
    flags: int
    format: PayloadFormat
    payload: bytes
    prev_hash: bytes
    hash: bytes

    @property
    def timestamp_ms(self) -> int:
        """Wall-clock milliseconds of the HLC timestamp."""
        return self.hlc >> 16

    def value(self) -> Any:
        """The decoded payload (bytes for BYTES payloads)."""
        return decode_payload(self.payload, self.format)


@dataclass(frozen=True, slots=True)
class SideValue:
    """A value kept beside the logs under ``ref``, erasable by ``ref`` or by ``subject``.

    The logs never hold the value; callers put a salted commitment to it in an entry.
    """

    ref: str
    subject: str
    value: bytes


@dataclass(frozen=True, slots=True)
class LogInfo:
    """A log's committed state: its size and the head of its hash chain and Merkle tree."""

    name: str
    size: int
    head_hash: bytes
    root: bytes
    created_hlc: int


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The Merkle tree head of a log at ``size`` entries (what a checkpoint commits to)."""

    log: str
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Metadata and range conditions on entries, pushed down to SQL indexes.

    Sequence bounds apply within one log; position and HLC bounds apply across logs.
    ``subject_under`` matches a subject path and its descendants (segment-aware:
    ``/customers`` is not under ``/customer``); ``subject_below`` only the descendants.
    """

    types: frozenset[str] | None = None
    subject: str | None = None
    subjects: frozenset[str] | None = None  # any of these subjects (one indexed lookup)
    subject_under: str | None = None
    subject_below: str | None = None
    key: str | None = None
    keys: frozenset[str] | None = None  # any of these keys (one indexed lookup for many)
    seq_min: int | None = None
    seq_max: int | None = None
    position_min: int | None = None
    position_max: int | None = None
    hlc_min: int | None = None
    hlc_max: int | None = None
    flags_all: int = 0
    flags_none: int = 0


class ProblemKind(enum.StrEnum):
    """Why verification rejected a log."""

    MODIFIED = "modified"  # an entry's content no longer matches its hash
    DELETED = "deleted"  # an entry is missing in the middle of the log
    REORDERED = "reordered"  # an entry sits at another place than it was written at
    INSERTED = "inserted"  # an entry that was never appended through the store
    TRUNCATED = "truncated"  # entries are missing at the end (or the store was rolled back)
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"  # the log disagrees with a trusted tree head
    TREE_MISMATCH = "tree_mismatch"  # stored Merkle state disagrees with the entries


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    seq: int | None
    detail: str
    entry_id: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of walking a log. ``problem`` is the first bad entry, if any."""

    log: str
    ok: bool
    entries_checked: int
    size: int
    root: bytes
    problem: Problem | None = None
    checkpoint_checked: bool = False


@dataclass(slots=True)
class Subscription:
    """A live feed of entries after a position: replay first, then live, in position order.

    Iterate it (blocks until the next entry), or call :meth:`next` with a timeout.
    """

    _next: Callable[[float | None], Entry | None]
    _close: Callable[[], None]
    position: int = 0
    closed: bool = field(default=False)

    def next(self, timeout: float | None = None) -> Entry | None:
        """The next entry, or None if none arrived within ``timeout`` seconds."""
        entry = self._next(timeout)
        if entry is not None:
            self.position = entry.position
        return entry

    def __iter__(self) -> Iterator[Entry]:
        while not self.closed:
            entry = self.next(None)
            if entry is not None:
                yield entry

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reader(Protocol):
    """Read access inside a write transaction, handed to an append's ``check``.

    What it reads is what the append will commit on top of: nothing can be appended between
    the check and the append.
    """

    def log_info(self, log: str) -> LogInfo | None: ...

    def count(self, log: str | None = None, where: EntryFilter | None = None) -> int: ...

    def read(
        self,
        log: str | None = None,
        where: EntryFilter | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]: ...


Check = Callable[[Reader], None]


class LedgerStore(ABC):
    """A store of append-only, hash-chained, Merkle-tree-backed logs."""

    url: str

    # --- writes ---

    @abstractmethod
    def append_batch(
        self,
        entries: Sequence[NewEntry],
        *,
        side: Sequence[SideValue] = (),
        check: Check | None = None,
    ) -> list[Entry]:
        """Append entries (to one or several logs) and side values atomically: all or nothing.

        ``check`` runs inside the write transaction, after the store is locked; any exception
        it raises aborts the append and propagates unchanged.
        """

    def append(
        self, entry: NewEntry, *, side: Sequence[SideValue] = (), check: Check | None = None
    ) -> Entry:
        return self.append_batch([entry], side=side, check=check)[0]

    # --- reads ---

    @abstractmethod
    def logs(self) -> list[LogInfo]: ...

    @abstractmethod
    def log_info(self, log: str) -> LogInfo:
        """A log's committed state; raises UnknownLogError."""

    @abstractmethod
    def get(self, entry_id: str) -> Entry | None: ...

    @abstractmethod
    def read(
        self,
        log: str | None = None,
        where: EntryFilter | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        """Entries of one log in sequence order, or of all logs in position order.

        Streams in chunks; never loads a whole log.
        """

    @abstractmethod
    def count(self, log: str | None = None, where: EntryFilter | None = None) -> int: ...

    @abstractmethod
    def subjects(self, log: str) -> list[str]:
        """The distinct subjects of a log's entries, sorted (from the subject index)."""

    @abstractmethod
    def subject_count(self, log: str) -> int:
        """How many distinct subjects a log's entries have."""

    # --- Merkle tree ---

    @abstractmethod
    def tree_head(self, log: str, size: int | None = None) -> TreeHead: ...

    @abstractmethod
    def inclusion_proof(self, log: str, index: int, size: int | None = None) -> list[bytes]: ...

    @abstractmethod
    def consistency_proof(self, log: str, size1: int, size2: int | None = None) -> list[bytes]: ...

    @abstractmethod
    def verify(
        self,
        log: str,
        *,
        trusted: TreeHead | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> VerifyReport: ...

    # --- change feed ---

    @abstractmethod
    def subscribe(
        self,
        logs: Sequence[str] | None = None,
        *,
        after_position: int = 0,
        poll_interval: float = 0.5,
    ) -> Subscription: ...

    @abstractmethod
    def last_position(self) -> int: ...

    # --- erasable side store ---

    @abstractmethod
    def side_get(self, refs: Sequence[str]) -> dict[str, bytes]: ...

    @abstractmethod
    def side_erase(
        self,
        *,
        refs: Sequence[str] = (),
        subject: str | None = None,
        subject_under: str | None = None,
    ) -> int:
        """Delete side values and scrub their bytes from the database files; returns the count."""

    # --- lifecycle ---

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
