"""The SQL implementation shared by every backend.

Backends (``sqlite.py``, ``postgres.py``) supply connections, the write lock, the schema and
the error mapping; everything else — validation, hashing, the Merkle tree, proofs,
verification, the change feed and the side store — lives here once.

Writes run under one store-wide write lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
PostgreSQL), so positions, sequence numbers and HLC timestamps are assigned in commit order and
no log can fork, whatever number of threads and processes append.
"""

from __future__ import annotations

import threading
import time
import uuid
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, cast

import uuid_utils

from ledgerstore import merkle
from ledgerstore.backend import (
    Check,
    DatabaseError,
    Entry,
    EntryFilter,
    InterfaceError,
    InvalidArgumentError,
    InvalidEntryError,
    LedgerStore,
    LogInfo,
    NewEntry,
    PayloadFormat,
    PayloadTooLargeError,
    Problem,
    ProblemKind,
    ProgrammingError,
    SideValue,
    StoreClosedError,
    Subscription,
    TreeHead,
    UnknownLogError,
    VerifyReport,
    encode_payload,
)
from ledgerstore.chain import (
    GENESIS_HASH,
    assemble,
    log_prefix,
    next_hlc,
    recompute_hash,
    text_field,
)

DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
MAX_NAME_LENGTH = 255
MAX_META_LENGTH = 4096
MAX_FILTER_KEYS = 10_000  # keys (or subjects) in one EntryFilter (one SQL IN list)
READ_CHUNK = 500
# Inner Merkle nodes are stored from this level up. A leaf is SHA-256(0x00 || the entry's hash
# column) and a level-1 node is two leaves away, so storing those would only double the rows.
STORED_FROM_LEVEL = 2
# How far verification looks for the place an out-of-place entry belongs.
_REORDER_WINDOW = 64

_ENTRY_COLUMNS = (
    "e.position, e.log_id, e.seq, e.hlc, e.id, e.type, e.subject, e.key, e.flags, e.format, "
    "e.payload, e.prev_hash, e.hash"
)

Cursor = Any  # a DB-API cursor of the backend's driver
ErrorMap = tuple[tuple[type[Exception], type[DatabaseError] | type[InterfaceError]], ...]

SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS ls_schema_version (version INTEGER NOT NULL)"


@contextmanager
def translate_errors(driver_error: type[Exception], mapping: ErrorMap) -> Iterator[None]:
    """Re-raise a driver error as the most specific ledgerstore error (first match wins)."""
    try:
        yield
    except driver_error as exc:
        for source, target in mapping:
            if isinstance(exc, source):
                raise target(f"{type(exc).__name__}: {exc}") from exc
        raise DatabaseError(f"{type(exc).__name__}: {exc}") from exc


@dataclass(slots=True)
class _LogState:
    """A log's mutable state during one write transaction."""

    log_id: int
    size: int
    head: bytes
    tree: merkle.CompactRange
    created_hlc: int
    prefix: bytes  # chain.log_prefix of the log's name
    new_leaves: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Prepared:
    entry: NewEntry
    fmt: PayloadFormat
    payload: bytes
    texts: bytes  # chain.text_field of type, subject and key, checked


def _text_field(what: str, value: object) -> bytes:
    """An optional type, subject or key, checked, as the entry layout holds it."""
    _check_text(what, value, limit=MAX_META_LENGTH, optional=True)
    return text_field(cast("str | None", value))


def _check_text(what: str, value: object, *, limit: int, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidEntryError(f"{what} must be a string, not {type(value).__name__}")
    if not value and not optional:
        raise InvalidEntryError(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidEntryError(f"{what} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidEntryError(f"{what} must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidEntryError(f"{what} is not valid Unicode text") from None


def check_log_name(name: object) -> str:
    _check_text("log name", name, limit=MAX_NAME_LENGTH, optional=False)
    assert isinstance(name, str)
    return name


def _check_filter(where: object) -> None:
    if not isinstance(where, EntryFilter):
        raise InvalidArgumentError(f"expected an EntryFilter, not {type(where).__name__}")
    types: object = where.types
    if types is not None and (
        not isinstance(types, frozenset | set) or not all(isinstance(t, str) for t in types)
    ):
        raise InvalidArgumentError("types must be a set of strings")
    for name in ("keys", "subjects"):
        values: object = getattr(where, name)
        if values is None:
            continue
        if not isinstance(values, frozenset | set) or not all(isinstance(v, str) for v in values):
            raise InvalidArgumentError(f"{name} must be a set of strings")
        if len(values) > MAX_FILTER_KEYS:
            raise InvalidArgumentError(f"at most {MAX_FILTER_KEYS} {name} in one filter")
        for value in values:
            _check_text(name[:-1], value, limit=MAX_META_LENGTH, optional=False)
    for name in ("subject", "subject_under", "subject_below", "key"):
        value = getattr(where, name)
        if value is not None:
            _check_text(name, value, limit=MAX_META_LENGTH, optional=False)
    for name in ("flags_all", "flags_none"):
        value = getattr(where, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgumentError(f"{name} must be a non-negative integer")


def _subject_range(path: str) -> tuple[str, str]:
    """The half-open string range holding exactly the descendants of a subject path."""
    base = path.rstrip("/")
    return base + "/", base + "0"  # "0" is the character after "/"


class SQLStore(LedgerStore):
    """A ledgerstore on a SQL database; subclasses bind it to one driver."""

    placeholder = "?"
    migrations: tuple[tuple[str, ...], ...] = ()

    def __init__(self, url: str, *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        self.url = url
        self.max_payload_bytes = max_payload_bytes
        self._closed = False
        self._log_names: dict[int, str] = {}
        self._checked_names: set[str] = set()
        self._changed = threading.Condition()
        self._generation = 0

    # --- what a backend provides -------------------------------------------------------------

    @abstractmethod
    def _write_transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor in a transaction that holds the store-wide write lock; commits on exit."""

    @abstractmethod
    def _read_cursor(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads (autocommit or a short read transaction)."""

    @abstractmethod
    def _scrub(self) -> None:
        """Make deleted side values leave the database files (checkpoint, vacuum)."""

    def _announcement(self, last_position: int) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """Statements that tell other processes about a commit, run inside its transaction."""
        return []

    def _sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    # --- lifecycle ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Bring the schema to the newest version, one numbered step at a time."""
        with self._write_transaction() as cur:
            cur.execute(SCHEMA_VERSION_TABLE)
            cur.execute("SELECT version FROM ls_schema_version")
            row = cur.fetchone()
            current = 0 if row is None else int(row[0])
            if current > len(self.migrations):
                raise ProgrammingError(
                    f"the database has schema version {current}, newer than this ledgerstore "
                    f"({len(self.migrations)})"
                )
            for steps in self.migrations[current:]:
                for statement in steps:
                    cur.execute(statement)
            if row is None:
                cur.execute(
                    self._sql("INSERT INTO ls_schema_version (version) VALUES (?)"),
                    (len(self.migrations),),
                )
            elif current < len(self.migrations):
                cur.execute(
                    self._sql("UPDATE ls_schema_version SET version = ?"), (len(self.migrations),)
                )

    @property
    def schema_version(self) -> int:
        with self._read_cursor() as cur:
            cur.execute("SELECT version FROM ls_schema_version")
            return int(cur.fetchone()[0])

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the store is closed")

    def close(self) -> None:
        self._closed = True
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    # --- writes ------------------------------------------------------------------------------

    def _prepare(self, entry: NewEntry) -> _Prepared:
        if not isinstance(entry, NewEntry):
            raise InvalidEntryError(f"expected a NewEntry, not {type(entry).__name__}")
        if entry.log not in self._checked_names:
            check_log_name(entry.log)
            if len(self._checked_names) < 100_000:
                self._checked_names.add(entry.log)
        texts = (
            _text_field("type", entry.type)
            + _text_field("subject", entry.subject)
            + _text_field("key", entry.key)
        )
        if isinstance(entry.flags, bool) or not isinstance(entry.flags, int):
            raise InvalidEntryError("flags must be an integer")
        if not 0 <= entry.flags < 2**31:
            raise InvalidEntryError("flags must be between 0 and 2**31 - 1")
        fmt = entry.format
        if fmt is None:
            is_bytes = isinstance(entry.payload, bytes | bytearray | memoryview)
            fmt = PayloadFormat.BYTES if is_bytes else PayloadFormat.JSON
        elif not isinstance(fmt, PayloadFormat):
            raise InvalidEntryError("format must be a PayloadFormat")
        payload = encode_payload(entry.payload, fmt)
        if len(payload) > self.max_payload_bytes:
            raise PayloadTooLargeError(
                f"payload of {len(payload)} bytes exceeds the limit of {self.max_payload_bytes}"
            )
        return _Prepared(entry, fmt, payload, texts)

    def _check_side(self, value: SideValue) -> None:
        if not isinstance(value, SideValue):
            raise InvalidEntryError(f"expected a SideValue, not {type(value).__name__}")
        _check_text("side reference", value.ref, limit=MAX_META_LENGTH, optional=False)
        _check_text("side subject", value.subject, limit=MAX_META_LENGTH, optional=False)
        if not isinstance(value.value, bytes):
            raise InvalidEntryError("a side value must be bytes")
        if len(value.value) > self.max_payload_bytes:
            raise PayloadTooLargeError(
                f"side value of {len(value.value)} bytes exceeds the limit "
                f"of {self.max_payload_bytes}"
            )

    def append_batch(
        self,
        entries: Sequence[NewEntry],
        *,
        side: Sequence[SideValue] = (),
        check: Check | None = None,
    ) -> list[Entry]:
        self._check_open()
        prepared = [self._prepare(entry) for entry in entries]
        for value in side:
            self._check_side(value)
        if len({value.ref for value in side}) != len(side):
            raise InvalidEntryError("side references in one append must be unique")
        if not prepared and not side and check is None:
            return []
        with self._write_transaction() as cur:
            if check is not None:
                check(_TransactionReader(self, cur))
            stored, writes = self._append_locked(cur, prepared)
            if side:
                position = stored[-1].position if stored else None
                writes.append(
                    (
                        "INSERT INTO ls_side (ref, subject, value, position) VALUES (?,?,?,?)",
                        [(v.ref, v.subject, v.value, position) for v in side],
                    )
                )
            if stored:
                writes.extend(self._announcement(stored[-1].position))
            self._write_rows(cur, writes)
        if stored:
            self._bump()
        return stored

    def _write_rows(self, cur: Cursor, writes: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        """Run the statements of one append, each over its rows (a backend may pipeline them)."""
        for statement, rows in writes:
            cur.executemany(self._sql(statement), rows)

    def _append_locked(
        self, cur: Cursor, prepared: list[_Prepared]
    ) -> tuple[list[Entry], list[tuple[str, list[tuple[Any, ...]]]]]:
        """Assign places, hash and chain the entries; return them and the rows to write."""
        if not prepared:
            return [], []
        cur.execute("SELECT position, hlc FROM ls_entries ORDER BY position DESC LIMIT 1")
        row = cur.fetchone()
        position, hlc = (int(row[0]), int(row[1])) if row else (0, 0)
        wall_ms = time.time_ns() // 1_000_000
        states: dict[str, _LogState] = {}
        for item in prepared:
            if item.entry.log not in states:
                states[item.entry.log] = self._load_log(cur, item.entry.log, next_hlc(hlc, wall_ms))
        entry_rows: list[tuple[Any, ...]] = []
        stored: list[Entry] = []
        for item in prepared:
            new = item.entry
            state = states[new.log]
            hlc = next_hlc(hlc, wall_ms)
            position += 1
            new_id = uuid_utils.uuid7()
            entry_id = new_id.bytes
            fmt = int(item.fmt)
            digest = sha256(
                assemble(state.prefix, state.size, position, hlc, entry_id, new.flags, fmt,
                         item.texts, item.payload, state.head)
            ).digest()  # fmt: skip
            state.new_leaves.append(sha256(b"\x00" + digest).digest())  # RFC 9162 leaf
            entry_rows.append(
                (position, state.log_id, state.size, hlc, entry_id, new.type, new.subject, new.key,
                 new.flags, fmt, item.payload, state.head, digest)
            )  # fmt: skip
            stored.append(
                Entry(new.log, state.size, position, hlc, str(new_id),
                      new.type, new.subject, new.key, new.flags, item.fmt, item.payload,
                      state.head, digest)
            )  # fmt: skip
            state.size += 1
            state.head = digest
        node_rows = [
            (state.log_id, level, index, value)
            for state in states.values()
            for level, index, value in state.tree.extend(state.new_leaves)
            if level >= STORED_FROM_LEVEL
        ]
        writes: list[tuple[str, list[tuple[Any, ...]]]] = [
            (
                "INSERT INTO ls_entries (position, log_id, seq, hlc, id, type, subject, key, "
                "flags, format, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                entry_rows,
            ),
            (
                "UPDATE ls_logs SET size = ?, head = ?, frontier = ? WHERE id = ?",
                [(s.size, s.head, s.tree.to_bytes(), s.log_id) for s in states.values()],
            ),
        ]
        if node_rows:
            writes.append(
                ("INSERT INTO ls_nodes (log_id, level, idx, hash) VALUES (?,?,?,?)", node_rows)
            )
        return stored, writes

    def _load_log(self, cur: Cursor, name: str, created_hlc: int) -> _LogState:
        cur.execute(
            self._sql("SELECT id, size, head, frontier, created_hlc FROM ls_logs WHERE name = ?"),
            (name,),
        )
        row = cur.fetchone()
        if row is None:
            cur.execute(
                self._sql(
                    "INSERT INTO ls_logs (name, size, head, frontier, created_hlc) "
                    "VALUES (?, 0, ?, ?, ?) RETURNING id"
                ),
                (name, GENESIS_HASH, b"", created_hlc),
            )
            return _LogState(
                int(cur.fetchone()[0]), 0, GENESIS_HASH, merkle.CompactRange(), created_hlc,
                log_prefix(name),
            )  # fmt: skip
        size = int(row[1])
        tree = merkle.CompactRange.from_bytes(size, bytes(row[3]))
        return _LogState(int(row[0]), size, bytes(row[2]), tree, int(row[4]), log_prefix(name))

    # --- change notification -----------------------------------------------------------------

    def _bump(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _wait_for_change(self, generation: int, timeout: float) -> None:
        with self._changed:
            if self._generation == generation and not self._closed:
                self._changed.wait(timeout)

    # --- reads -------------------------------------------------------------------------------

    def logs(self) -> list[LogInfo]:
        self._check_open()
        with self._read_cursor() as cur:
            return _Queries(self, cur).logs()

    def log_info(self, log: str) -> LogInfo:
        self._check_open()
        with self._read_cursor() as cur:
            info = _Queries(self, cur).log_info(log)
        if info is None:
            raise UnknownLogError(log)
        return info

    def get(self, entry_id: str) -> Entry | None:
        self._check_open()
        try:
            raw = uuid.UUID(entry_id).bytes
        except (ValueError, TypeError, AttributeError):
            raise InvalidArgumentError(f"not a UUID: {entry_id!r}") from None
        with self._read_cursor() as cur:
            cur.execute(
                self._sql(f"SELECT {_ENTRY_COLUMNS} FROM ls_entries e WHERE e.id = ?"), (raw,)
            )
            row = cur.fetchone()
            return None if row is None else _Queries(self, cur).entry(row)

    def read(
        self,
        log: str | None = None,
        where: EntryFilter | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        self._check_open()
        log_id = self._require_log_id(log) if log is not None else None

        def fetch(after: Entry | None, count: int) -> list[Entry]:
            self._check_open()
            with self._read_cursor() as cur:
                return _Queries(self, cur).chunk(log_id, where, reverse, after, count)

        return _stream(fetch, limit)

    def count(self, log: str | None = None, where: EntryFilter | None = None) -> int:
        self._check_open()
        log_id = self._require_log_id(log) if log is not None else None
        with self._read_cursor() as cur:
            return _Queries(self, cur).count(log_id, where)

    def subjects(self, log: str) -> list[str]:
        rows = self._over_subjects(log, "DISTINCT subject", " ORDER BY subject")
        return [str(row[0]) for row in rows]

    def subject_count(self, log: str) -> int:
        return int(self._over_subjects(log, "count(DISTINCT subject)", "")[0][0])

    def _over_subjects(self, log: str, select: str, order: str) -> list[tuple[Any, ...]]:
        self._check_open()
        log_id = self._require_log_id(log)
        sql = f"SELECT {select} FROM ls_entries WHERE log_id = ? AND subject IS NOT NULL{order}"
        with self._read_cursor() as cur:
            cur.execute(self._sql(sql), (log_id,))
            return list(cur.fetchall())

    def last_position(self) -> int:
        self._check_open()
        with self._read_cursor() as cur:
            cur.execute("SELECT max(position) FROM ls_entries")
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _require_log_id(self, log: str) -> int:
        check_log_name(log)
        with self._read_cursor() as cur:
            log_id = _Queries(self, cur).log_id(log)
        if log_id is None:
            raise UnknownLogError(log)
        return log_id

    def log_name(self, cur: Cursor, log_id: int) -> str:
        name = self._log_names.get(log_id)
        if name is None:
            cur.execute(self._sql("SELECT name FROM ls_logs WHERE id = ?"), (log_id,))
            row = cur.fetchone()
            if row is None:
                raise DatabaseError(f"entry refers to log id {log_id}, which does not exist")
            name = self._log_names[log_id] = str(row[0])
        return name

    # --- Merkle tree -------------------------------------------------------------------------

    def tree_head(self, log: str, size: int | None = None) -> TreeHead:
        if size is None:
            info = self.log_info(log)
            return TreeHead(log, info.size, info.root)
        return TreeHead(log, size, self._proof(log, size, lambda n: [(0, n)] if n else [])[0])

    def inclusion_proof(self, log: str, index: int, size: int | None = None) -> list[bytes]:
        return self._proof(log, size, lambda n: merkle.inclusion_ranges(index, n))[1]

    def consistency_proof(self, log: str, size1: int, size2: int | None = None) -> list[bytes]:
        return self._proof(log, size2, lambda n: merkle.consistency_ranges(size1, n))[1]

    def _proof(
        self, log: str, size: int | None, ranges_for: Callable[[int], list[tuple[int, int]]]
    ) -> tuple[bytes, list[bytes]]:
        """Fold the leaf ranges a proof needs at ``size``: one connection, two queries.

        Returns the root at ``size`` (when the ranges are [(0, size)]) and the folded hashes.
        """
        self._check_open()
        check_log_name(log)
        with self._read_cursor() as cur:
            queries = _Queries(self, cur)
            found = queries.log_row(log)
            if found is None:
                raise UnknownLogError(log)
            log_id, info = found
            size = info.size if size is None else size
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= info.size:
                raise InvalidArgumentError(
                    f"tree size must be between 0 and {info.size}, not {size}"
                )
            try:
                ranges = ranges_for(size)
            except merkle.MalformedProofError as exc:
                raise InvalidArgumentError(str(exc)) from None
            if size == info.size and ranges == [(0, size)]:
                return info.root, [info.root]
            wanted = [merkle.perfect_subtrees(a, b) for a, b in ranges]
            nodes = queries.nodes(log_id, {node for group in wanted for node in group})
        folded = [merkle.fold_range([nodes[node] for node in group]) for group in wanted]
        return (folded[0] if folded else merkle.EMPTY_ROOT), folded

    # --- verification ------------------------------------------------------------------------

    def verify(
        self,
        log: str,
        *,
        trusted: TreeHead | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> VerifyReport:
        info = self.log_info(log)
        with self._read_cursor() as cur:
            log_id = _Queries(self, cur).log_id(log)
        assert log_id is not None
        walker = _Verifier(self, log, log_id, info, trusted)
        return walker.run(progress)

    # --- change feed -------------------------------------------------------------------------

    def subscribe(
        self,
        logs: Sequence[str] | None = None,
        *,
        after_position: int = 0,
        poll_interval: float = 0.5,
    ) -> Subscription:
        self._check_open()
        names = None if logs is None else {check_log_name(name) for name in logs}
        buffer: deque[Entry] = deque()
        cursor = [after_position]
        closed = threading.Event()

        def fetch() -> list[Entry]:
            with self._read_cursor() as cur:
                return _Queries(self, cur).after_position(cursor[0], names, READ_CHUNK)

        def next_entry(timeout: float | None) -> Entry | None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not closed.is_set():
                if buffer:
                    return buffer.popleft()
                generation = self._generation
                self._check_open()
                chunk = fetch()
                if chunk:
                    cursor[0] = chunk[-1].position
                    buffer.extend(entry for entry in chunk if names is None or entry.log in names)
                    continue
                wait = poll_interval
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return None
                self._wait_for_change(generation, wait)
            return None

        def close() -> None:
            closed.set()
            self._bump()

        return Subscription(next_entry, close, position=after_position)

    # --- erasable side store -----------------------------------------------------------------

    def side_get(self, refs: Sequence[str]) -> dict[str, bytes]:
        self._check_open()
        found: dict[str, bytes] = {}
        refs = list(dict.fromkeys(refs))
        with self._read_cursor() as cur:
            for start in range(0, len(refs), READ_CHUNK):
                part = refs[start : start + READ_CHUNK]
                marks = ",".join("?" * len(part))
                cur.execute(
                    self._sql(f"SELECT ref, value FROM ls_side WHERE ref IN ({marks})"), part
                )
                found.update((str(ref), bytes(value)) for ref, value in cur.fetchall())
        return found

    def side_erase(
        self,
        *,
        refs: Sequence[str] = (),
        subject: str | None = None,
        subject_under: str | None = None,
    ) -> int:
        self._check_open()
        if not refs and subject is None and subject_under is None:
            raise InvalidArgumentError("side_erase needs refs, a subject or a subject_under")
        erased = 0
        with self._write_transaction() as cur:
            refs = list(refs)
            for start in range(0, len(refs), READ_CHUNK):
                part = refs[start : start + READ_CHUNK]
                marks = ",".join("?" * len(part))
                cur.execute(self._sql(f"DELETE FROM ls_side WHERE ref IN ({marks})"), part)
                erased += max(cur.rowcount, 0)
            if subject is not None:
                cur.execute(self._sql("DELETE FROM ls_side WHERE subject = ?"), (subject,))
                erased += max(cur.rowcount, 0)
            if subject_under is not None:
                low, high = _subject_range(subject_under)
                cur.execute(
                    self._sql(
                        "DELETE FROM ls_side WHERE subject = ? OR (subject >= ? AND subject < ?)"
                    ),
                    (subject_under, low, high),
                )
                erased += max(cur.rowcount, 0)
        if erased:
            self._scrub()
        return erased


def _stream(
    fetch: Callable[[Entry | None, int], list[Entry]], limit: int | None
) -> Iterator[Entry]:
    """Keyset-paginated iteration: one short query per chunk, no cursor held across yields."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgumentError("limit must be a non-negative integer")
    remaining = limit
    after: Entry | None = None
    while remaining is None or remaining > 0:
        size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
        chunk = fetch(after, size)
        yield from chunk
        if len(chunk) < size:
            return
        after = chunk[-1]
        if remaining is not None:
            remaining -= len(chunk)


class _Queries:
    """Read queries on one cursor: shared by plain reads and by checks inside a write."""

    def __init__(self, store: SQLStore, cur: Cursor) -> None:
        self.store = store
        self.cur = cur

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.cur.execute(self.store._sql(statement), params)

    def entry(self, row: Sequence[Any]) -> Entry:
        return Entry(
            log=self.store.log_name(self.cur, int(row[1])),
            seq=int(row[2]),
            position=int(row[0]),
            hlc=int(row[3]),
            id=str(uuid.UUID(bytes=bytes(row[4]))),
            type=row[5],
            subject=row[6],
            key=row[7],
            flags=int(row[8]),
            format=PayloadFormat(int(row[9])),
            payload=bytes(row[10]),
            prev_hash=bytes(row[11]),
            hash=bytes(row[12]),
        )

    def log_id(self, name: str) -> int | None:
        self.execute("SELECT id FROM ls_logs WHERE name = ?", (name,))
        row = self.cur.fetchone()
        return None if row is None else int(row[0])

    def _info(self, row: Sequence[Any]) -> LogInfo:
        size = int(row[1])
        tree = merkle.CompactRange.from_bytes(size, bytes(row[3]))
        return LogInfo(str(row[0]), size, bytes(row[2]), tree.root(), int(row[4]))

    def log_row(self, name: str) -> tuple[int, LogInfo] | None:
        self.execute(
            "SELECT name, size, head, frontier, created_hlc, id FROM ls_logs WHERE name = ?",
            (name,),
        )
        row = self.cur.fetchone()
        return None if row is None else (int(row[5]), self._info(row))

    def log_info(self, name: str) -> LogInfo | None:
        self.execute(
            "SELECT name, size, head, frontier, created_hlc FROM ls_logs WHERE name = ?", (name,)
        )
        row = self.cur.fetchone()
        return None if row is None else self._info(row)

    def logs(self) -> list[LogInfo]:
        self.execute("SELECT name, size, head, frontier, created_hlc FROM ls_logs ORDER BY id")
        return [self._info(row) for row in self.cur.fetchall()]

    def conditions(
        self, log_id: int | None, where: EntryFilter | None
    ) -> tuple[list[str], list[Any], bool]:
        """SQL conditions for a filter, and whether it uses a metadata index."""
        clauses: list[str] = []
        params: list[Any] = []
        if log_id is not None:
            clauses.append("e.log_id = ?")
            params.append(log_id)
        if where is None:
            return clauses, params, False
        _check_filter(where)
        metadata = False
        if where.types is not None:
            types = sorted(where.types)
            if not types:
                clauses.append("1 = 0")
            else:
                clauses.append(f"e.type IN ({','.join('?' * len(types))})")
                params.extend(types)
            metadata = True
        if where.subject is not None:
            clauses.append("e.subject = ?")
            params.append(where.subject)
            metadata = True
        for path, include_self in ((where.subject_under, True), (where.subject_below, False)):
            if path is None:
                continue
            low, high = _subject_range(path)
            if include_self:
                clauses.append(
                    "e.subject >= ? AND e.subject < ? AND (e.subject = ? OR e.subject >= ?)"
                )
                params.extend((path, high, path, low))
            else:
                clauses.append("e.subject >= ? AND e.subject < ? AND e.subject <> ?")
                params.extend((low, high, path))
            metadata = True
        if where.key is not None:
            clauses.append("e.key = ?")
            params.append(where.key)
            metadata = True
        for column, values in (("key", where.keys), ("subject", where.subjects)):
            if values is not None:
                listed = sorted(values)
                marks = ",".join("?" * len(listed))
                clauses.append(f"e.{column} IN ({marks})" if listed else "1 = 0")
                params.extend(listed)
                metadata = True
        for column, op, value in (
            ("seq", ">=", where.seq_min),
            ("seq", "<=", where.seq_max),
            ("position", ">=", where.position_min),
            ("position", "<=", where.position_max),
            ("hlc", ">=", where.hlc_min),
            ("hlc", "<=", where.hlc_max),
        ):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InvalidArgumentError(f"{column} bounds must be integers")
                clauses.append(f"e.{column} {op} ?")
                params.append(value)
        if where.flags_all:
            clauses.append("(e.flags & ?) = ?")
            params.extend((where.flags_all, where.flags_all))
        if where.flags_none:
            clauses.append("(e.flags & ?) = 0")
            params.append(where.flags_none)
        return clauses, params, metadata

    def chunk(
        self,
        log_id: int | None,
        where: EntryFilter | None,
        reverse: bool,
        after: Entry | None,
        count: int,
    ) -> list[Entry]:
        clauses, params, metadata = self.conditions(log_id, where)
        # Within a log seq and position grow together; seq uses the (log_id, seq) index.
        column = "seq" if log_id is not None and not metadata else "position"
        if after is not None:
            clauses.append(f"e.{column} {'<' if reverse else '>'} ?")
            params.append(getattr(after, column))
        sql = f"SELECT {_ENTRY_COLUMNS} FROM ls_entries e"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY e.{column} {'DESC' if reverse else 'ASC'} LIMIT {int(count)}"
        self.execute(sql, params)
        return [self.entry(row) for row in self.cur.fetchall()]

    def count(self, log_id: int | None, where: EntryFilter | None) -> int:
        clauses, params, _ = self.conditions(log_id, where)
        sql = "SELECT count(*) FROM ls_entries e"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        self.execute(sql, params)
        return int(self.cur.fetchone()[0])

    def after_position(self, position: int, names: set[str] | None, count: int) -> list[Entry]:
        if names is not None and len(names) == 1:
            log_id = self.log_id(next(iter(names)))
            if log_id is None:
                return []
            self.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM ls_entries e WHERE e.log_id = ? AND e.position > ? "
                f"ORDER BY e.position LIMIT {int(count)}",
                (log_id, position),
            )
        else:
            self.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM ls_entries e WHERE e.position > ? "
                f"ORDER BY e.position LIMIT {int(count)}",
                (position,),
            )
        return [self.entry(row) for row in self.cur.fetchall()]

    def nodes(self, log_id: int, wanted: set[merkle.NodeID]) -> dict[merkle.NodeID, bytes]:
        """The hashes of the given perfect subtrees, from entries and stored inner nodes.

        One round trip: a point lookup per row, glued with UNION ALL (an OR of many
        (level, idx) pairs makes SQLite's planner scan the whole log's nodes instead).
        """
        low = {node for node in wanted if node.level < STORED_FROM_LEVEL}
        inner = sorted((node.level, node.index) for node in wanted - low)
        seqs = sorted({seq for node in low for seq in range(node.begin, node.end)})
        lookups: list[str] = []
        params: list[int] = []
        for seq in seqs:
            lookups.append("SELECT 0, seq, hash FROM ls_entries WHERE log_id = ? AND seq = ?")
            params += (log_id, seq)
        for level, index in inner:
            lookups.append(
                "SELECT level, idx, hash FROM ls_nodes WHERE log_id = ? AND level = ? AND idx = ?"
            )
            params += (log_id, level, index)
        found: dict[merkle.NodeID, bytes] = {}
        leaves: dict[int, bytes] = {}
        if lookups:
            self.execute(" UNION ALL ".join(lookups), params)
            for level, index, digest in self.cur.fetchall():
                if int(level) == 0:
                    leaves[int(index)] = merkle.leaf_hash(bytes(digest))
                else:
                    found[merkle.NodeID(int(level), int(index))] = bytes(digest)
        for node in low:
            hashes = [leaves.get(seq) for seq in range(node.begin, node.end)]
            if all(h is not None for h in hashes):
                found[node] = merkle.root_of_perfect(cast(list[bytes], hashes))
        missing = wanted - found.keys()
        if missing:
            raise DatabaseError(f"{len(missing)} Merkle tree nodes are missing from the store")
        return found

    def stored_nodes(self, log_id: int, level: int, first: int, last: int) -> dict[int, bytes]:
        self.execute(
            "SELECT idx, hash FROM ls_nodes "
            "WHERE log_id = ? AND level = ? AND idx >= ? AND idx <= ?",
            (log_id, level, first, last),
        )
        return {int(index): bytes(digest) for index, digest in self.cur.fetchall()}


class _TransactionReader:
    """The Reader a check sees: queries on the write transaction's own cursor."""

    def __init__(self, store: SQLStore, cur: Cursor) -> None:
        self._queries = _Queries(store, cur)

    def log_info(self, log: str) -> LogInfo | None:
        return self._queries.log_info(check_log_name(log))

    def count(self, log: str | None = None, where: EntryFilter | None = None) -> int:
        if log is None:
            return self._queries.count(None, where)
        log_id = self._queries.log_id(check_log_name(log))
        return 0 if log_id is None else self._queries.count(log_id, where)

    def read(
        self,
        log: str | None = None,
        where: EntryFilter | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[Entry]:
        log_id = None
        if log is not None:
            log_id = self._queries.log_id(check_log_name(log))
            if log_id is None:
                return iter(())
        return _stream(
            lambda after, n: self._queries.chunk(log_id, where, reverse, after, n), limit
        )


class _Verifier:
    """Walks one log in sequence order and names the first entry that is not as written."""

    def __init__(
        self, store: SQLStore, log: str, log_id: int, info: LogInfo, trusted: TreeHead | None
    ) -> None:
        self.store = store
        self.log = log
        self.log_id = log_id
        self.info = info
        self.trusted = trusted
        self.tree = merkle.CompactRange()
        self.new_nodes: list[tuple[merkle.NodeID, bytes]] = []
        self.checkpoint_checked = False

    def report(self, problem: Problem | None, checked: int) -> VerifyReport:
        return VerifyReport(
            log=self.log,
            ok=problem is None,
            entries_checked=checked,
            size=self.tree.size,
            root=self.tree.root(),
            problem=problem,
            checkpoint_checked=self.checkpoint_checked,
        )

    def run(self, progress: Callable[[int], None] | None) -> VerifyReport:
        if self.trusted is not None and self.trusted.size == 0:
            self.checkpoint_checked = self.trusted.root == merkle.EMPTY_ROOT
            if not self.checkpoint_checked:
                return self.report(
                    Problem(
                        ProblemKind.CHECKPOINT_MISMATCH, None, "a size-0 tree has another root"
                    ),
                    0,
                )
        expected = 0
        prev: Entry | None = None
        before_prev: Entry | None = None
        known: dict[bytes, int] = {}
        chunks = _stream(self._fetch, None)
        window: deque[Entry] = deque()
        for entry in chunks:
            window.append(entry)
            if len(window) <= _REORDER_WINDOW:
                continue
            current = window.popleft()
            problem = self._check(current, expected, prev, before_prev, known, window)
            if problem is not None:
                return self.report(problem, expected)
            before_prev, prev = prev, current
            expected += 1
            if progress is not None and expected % 10_000 == 0:
                progress(expected)
        while window:
            current = window.popleft()
            problem = self._check(current, expected, prev, before_prev, known, window)
            if problem is not None:
                return self.report(problem, expected)
            before_prev, prev = prev, current
            expected += 1
        if progress is not None:
            progress(expected)
        problem = self._finish(expected, prev)
        return self.report(problem, expected)

    def _fetch(self, after: Entry | None, count: int) -> list[Entry]:
        with self.store._read_cursor() as cur:
            entries = _Queries(self.store, cur).chunk(self.log_id, None, False, after, count)
            self._compare_nodes(cur)
        return entries

    def _check(
        self,
        entry: Entry,
        expected: int,
        prev: Entry | None,
        before_prev: Entry | None,
        known: dict[bytes, int],
        ahead: deque[Entry],
    ) -> Problem | None:
        if entry.seq > expected:
            missing = f"{expected}" if entry.seq == expected + 1 else f"{expected}–{entry.seq - 1}"
            return Problem(ProblemKind.DELETED, expected, f"entries {missing} are missing")
        if entry.seq < expected:
            return Problem(
                ProblemKind.INSERTED,
                entry.seq,
                "a second entry with this sequence number",
                entry.id,
            )
        if expected >= self.info.size:
            return Problem(
                ProblemKind.INSERTED,
                entry.seq,
                f"the log's committed size is {self.info.size}; this entry lies beyond it",
                entry.id,
            )
        prev_hash = GENESIS_HASH if prev is None else prev.hash
        if entry.prev_hash != prev_hash:
            problem = self._classify_broken_link(entry, prev, before_prev, known, ahead)
            if problem is not None:
                return problem
        if recompute_hash(entry) != entry.hash:
            for seq in range(max(0, entry.seq - _REORDER_WINDOW), entry.seq + _REORDER_WINDOW):
                if seq != entry.seq and recompute_hash(entry, seq=seq) == entry.hash:
                    return Problem(
                        ProblemKind.REORDERED,
                        entry.seq,
                        f"this entry was written as #{seq}",
                        entry.id,
                    )
            return Problem(
                ProblemKind.MODIFIED, entry.seq, "content does not match the entry's hash", entry.id
            )
        known[entry.hash] = entry.seq
        if len(known) > 4 * _REORDER_WINDOW:
            for digest in list(known)[: 2 * _REORDER_WINDOW]:
                del known[digest]
        self.tree.append(merkle.leaf_hash(entry.hash), self._collect)
        return self._check_trusted(entry.seq)

    def _classify_broken_link(
        self,
        entry: Entry,
        prev: Entry | None,
        before_prev: Entry | None,
        known: dict[bytes, int],
        ahead: deque[Entry],
    ) -> Problem:
        assert prev is not None or entry.seq == 0
        if before_prev is not None and entry.prev_hash == before_prev.hash and prev is not None:
            return Problem(
                ProblemKind.INSERTED,
                prev.seq,
                "this entry was never appended: its successor links past it",
                prev.id,
            )
        if entry.prev_hash in known or any(other.hash == entry.prev_hash for other in ahead):
            return Problem(
                ProblemKind.REORDERED,
                entry.seq,
                "this entry follows another entry than the one it was written after",
                entry.id,
            )
        if prev is not None and recompute_hash(entry) == entry.hash:
            return Problem(
                ProblemKind.MODIFIED,
                prev.seq,
                "content and hash were rewritten: the next entry no longer links to it",
                prev.id,
            )
        return Problem(
            ProblemKind.MODIFIED, entry.seq, "the link to the previous entry is broken", entry.id
        )

    def _collect(self, node: merkle.NodeID, value: bytes) -> None:
        if node.level >= STORED_FROM_LEVEL:
            self.new_nodes.append((node, value))

    def _compare_nodes(self, cur: Cursor) -> None:
        """Compare the subtree hashes recomputed so far with the stored ones."""
        if not self.new_nodes:
            return
        by_level: dict[int, list[tuple[int, bytes]]] = {}
        for node, value in self.new_nodes:
            by_level.setdefault(node.level, []).append((node.index, value))
        self.new_nodes = []
        queries = _Queries(self.store, cur)
        for level, nodes in by_level.items():
            stored = queries.stored_nodes(self.log_id, level, nodes[0][0], nodes[-1][0])
            for index, value in nodes:
                if stored.get(index) != value:
                    self.tree_problem = Problem(
                        ProblemKind.TREE_MISMATCH,
                        None,
                        f"stored Merkle node (level {level}, index {index}) does not match "
                        "the entries",
                    )
                    return

    tree_problem: Problem | None = None

    def _check_trusted(self, seq: int) -> Problem | None:
        if self.trusted is None or self.tree.size != self.trusted.size:
            return None
        self.checkpoint_checked = True
        if self.tree.root() != self.trusted.root:
            return Problem(
                ProblemKind.CHECKPOINT_MISMATCH,
                seq,
                f"the first {self.trusted.size} entries do not have the trusted root",
            )
        return None

    def _finish(self, count: int, last: Entry | None) -> Problem | None:
        with self.store._read_cursor() as cur:
            self._compare_nodes(cur)
        if count < self.info.size:
            return Problem(
                ProblemKind.TRUNCATED,
                count,
                f"the log committed {self.info.size} entries but only {count} remain",
            )
        if self.trusted is not None and self.trusted.size > count:
            return Problem(
                ProblemKind.TRUNCATED,
                count,
                f"a trusted checkpoint has {self.trusted.size} entries but the log has {count}: "
                "it was truncated or rolled back",
            )
        if self.tree_problem is not None:
            return self.tree_problem
        head = GENESIS_HASH if last is None else last.hash
        if head != self.info.head_hash or self.tree.root() != self.info.root:
            return Problem(
                ProblemKind.TREE_MISMATCH, None, "the log's stored head does not match its entries"
            )
        return None
