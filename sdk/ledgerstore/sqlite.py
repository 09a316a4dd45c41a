"""The SQLite backend: one database file in WAL mode, durable on every acknowledged commit.

Writers take ``BEGIN IMMEDIATE`` (and, within a process, a lock, so threads queue instead of
spinning in SQLite's busy handler); several processes on one file serialise on SQLite's own
write lock. ``synchronous=FULL`` makes every acknowledged commit survive a power cut;
``secure_delete`` plus a truncating checkpoint scrubs erased side values from the main file
and the WAL.

WAL checkpoints run in a background thread (``PRAGMA wal_checkpoint(PASSIVE)`` a few times a
second after commits), not inside a commit: SQLite's automatic checkpoint would make the
commit that crosses its threshold copy megabytes into the database file and wait for it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ledgerstore.backend import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    InvalidArgumentError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)
from ledgerstore.store import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    Cursor,
    ErrorMap,
    SQLStore,
    translate_errors,
)

# Most specific first: each sqlite3 error maps to the PEP 249 error of the same name.
ERROR_MAP: ErrorMap = (
    (sqlite3.IntegrityError, IntegrityError),
    (sqlite3.DataError, DataError),
    (sqlite3.OperationalError, OperationalError),
    (sqlite3.ProgrammingError, ProgrammingError),
    (sqlite3.InternalError, InternalError),
    (sqlite3.NotSupportedError, NotSupportedError),
    (sqlite3.InterfaceError, InterfaceError),
    (sqlite3.DatabaseError, DatabaseError),
    (sqlite3.Error, DatabaseError),
    (sqlite3.Warning, DatabaseError),
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE ls_logs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
        "size INTEGER NOT NULL, head BLOB NOT NULL, frontier BLOB NOT NULL, "
        "created_hlc INTEGER NOT NULL)",
        "CREATE TABLE ls_entries (position INTEGER PRIMARY KEY, log_id INTEGER NOT NULL, "
        "seq INTEGER NOT NULL, hlc INTEGER NOT NULL, id BLOB NOT NULL, type TEXT, subject TEXT, "
        "key TEXT, flags INTEGER NOT NULL, format INTEGER NOT NULL, payload BLOB NOT NULL, "
        "prev_hash BLOB NOT NULL, hash BLOB NOT NULL)",
        "CREATE UNIQUE INDEX ls_entries_log_seq ON ls_entries (log_id, seq)",
        "CREATE UNIQUE INDEX ls_entries_id ON ls_entries (id)",
        "CREATE INDEX ls_entries_log_hlc ON ls_entries (log_id, hlc)",
        "CREATE INDEX ls_entries_type ON ls_entries (log_id, type, position) "
        "WHERE type IS NOT NULL",
        "CREATE INDEX ls_entries_subject ON ls_entries (log_id, subject, position) "
        "WHERE subject IS NOT NULL",
        "CREATE INDEX ls_entries_key ON ls_entries (log_id, key, position) WHERE key IS NOT NULL",
        "CREATE TABLE ls_nodes (log_id INTEGER NOT NULL, level INTEGER NOT NULL, "
        "idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (log_id, level, idx)) WITHOUT ROWID",
        "CREATE TABLE ls_side (ref TEXT PRIMARY KEY, subject TEXT NOT NULL, value BLOB NOT NULL, "
        "position INTEGER)",
        "CREATE INDEX ls_side_subject ON ls_side (subject)",
    ),
)

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


CHECKPOINT_PAUSE_SECONDS = 0.2  # how long commits gather before a background checkpoint


class SQLiteStore(SQLStore):
    """A ledgerstore in one SQLite file."""

    migrations = MIGRATIONS

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 60.0,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        if str(path) in ("", ":memory:"):
            raise InvalidArgumentError("ledgerstore needs a database file, not an in-memory one")
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise InvalidArgumentError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        self.path = Path(path)
        super().__init__(f"sqlite:///{self.path}", max_payload_bytes=max_payload_bytes)
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self._write_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._connections: list[sqlite3.Connection] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._committed = threading.Event()
        self._stopping = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_in_background, name="ledgerstore-wal-checkpoint", daemon=True
        )
        self._migrate()
        self._checkpointer.start()

    def _errors(self) -> AbstractContextManager[None]:
        return translate_errors(sqlite3.Error, ERROR_MAP)

    def _connect(self) -> sqlite3.Connection:
        with self._errors():
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
            self._enter_wal(conn)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA cache_size=-32000")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the background thread checkpoints
        with self._pool_lock:
            self._connections.append(conn)
        return conn

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL, waiting up to ``busy_timeout`` for another opener. Changing the
        journal mode answers "database is locked" at once, without SQLite's busy handler, while
        another connection (another process or thread opening the same new file) holds a lock
        during its migration: seen as two clients opening one fresh database together."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        self._check_open()
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._pool_lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)

    @contextmanager
    def _read_cursor(self) -> Iterator[Cursor]:
        with self._connection() as conn, self._errors():
            cur = conn.cursor()
            try:
                yield cur
            finally:
                cur.close()  # finalises statements, so no read snapshot outlives the call

    @contextmanager
    def _write_transaction(self) -> Iterator[Cursor]:
        with self._write_lock, self._connection() as conn, self._errors():
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                conn.rollback()
                raise
            else:
                cur.execute("COMMIT")
                self._committed.set()
                if not self._checkpointer.is_alive() and not self._stopping.is_set():
                    # No checkpointer in this process (a forked child): checkpoint inline.
                    cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                cur.close()

    def _scrub(self) -> None:
        """Fold the WAL into the file and truncate it, so deleted bytes leave both files."""
        deadline = time.monotonic() + self.busy_timeout
        with self._connection() as conn, self._errors():
            while True:
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if not busy or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        if busy:
            raise OperationalError("could not checkpoint the WAL: a reader held it too long")

    def _checkpoint_in_background(self) -> None:
        """Fold the WAL into the database file after commits, off the writers' path.

        PASSIVE never blocks readers or writers; what it cannot copy now it copies next time.
        """
        conn: sqlite3.Connection | None = None
        try:
            while not self._stopping.is_set():
                if not self._committed.wait(timeout=0.5):
                    continue
                self._stopping.wait(CHECKPOINT_PAUSE_SECONDS)  # let a burst of commits gather
                self._committed.clear()
                if self._stopping.is_set():
                    break
                try:
                    if conn is None:
                        conn = sqlite3.connect(
                            self.path, isolation_level=None, check_same_thread=False,
                            timeout=self.busy_timeout,
                        )  # fmt: skip
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    pass  # tried again after the next commit; _scrub checkpoints on demand
        finally:
            if conn is not None:
                conn.close()

    def close(self) -> None:
        self._stopping.set()
        self._committed.set()
        if self._checkpointer.is_alive() and self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=5)
        super().close()
        with self._pool_lock:
            idle, self._idle = self._idle, []
            self._connections = []
        for conn in idle:
            conn.close()
