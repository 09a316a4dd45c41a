"""The PostgreSQL backend: psycopg 3 with a connection pool, for several processes and hosts.

Every write transaction first takes one transaction-scoped advisory lock. That makes positions
follow commit order (a reader never sees position n+1 before n is committed, so the change
feed has no gaps), and it is what keeps concurrent writers from forking a log. Commits are
announced with NOTIFY; subscribers in other processes LISTEN.

Erasure runs ``VACUUM FULL`` on the side table (rewriting it into new files) and a
``CHECKPOINT``. Old WAL segments hold the values until PostgreSQL removes them: run with
``wal_recycle = off`` (and no WAL archive of erasable data) so that happens at the next
checkpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import psycopg_pool

from ledgerstore.backend import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
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

# Most specific first: each psycopg error maps to the PEP 249 error of the same name.
ERROR_MAP: ErrorMap = (
    (psycopg.IntegrityError, IntegrityError),
    (psycopg.DataError, DataError),
    (psycopg.OperationalError, OperationalError),
    (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.InternalError, InternalError),
    (psycopg.NotSupportedError, NotSupportedError),
    (psycopg.InterfaceError, InterfaceError),
    (psycopg.DatabaseError, DatabaseError),
    (psycopg.Error, DatabaseError),
    (psycopg_pool.PoolTimeout, OperationalError),
    (psycopg_pool.PoolClosed, InterfaceError),
    (psycopg.Warning, DatabaseError),
)

# "ledgerstore" as a 64-bit advisory lock key.
WRITE_LOCK_KEY = 0x6C65646765727374
CHANNEL = "ledgerstore"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE ls_logs (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        'name TEXT COLLATE "C" NOT NULL UNIQUE, size BIGINT NOT NULL, head BYTEA NOT NULL, '
        "frontier BYTEA NOT NULL, created_hlc BIGINT NOT NULL)",
        "CREATE TABLE ls_entries (position BIGINT PRIMARY KEY, log_id BIGINT NOT NULL, "
        "seq BIGINT NOT NULL, hlc BIGINT NOT NULL, id BYTEA NOT NULL, "
        'type TEXT COLLATE "C", subject TEXT COLLATE "C", key TEXT COLLATE "C", '
        "flags INTEGER NOT NULL, format SMALLINT NOT NULL, payload BYTEA NOT NULL, "
        "prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL)",
        "CREATE UNIQUE INDEX ls_entries_log_seq ON ls_entries (log_id, seq)",
        "CREATE UNIQUE INDEX ls_entries_id ON ls_entries (id)",
        "CREATE INDEX ls_entries_log_hlc ON ls_entries (log_id, hlc)",
        "CREATE INDEX ls_entries_type ON ls_entries (log_id, type, position) "
        "WHERE type IS NOT NULL",
        "CREATE INDEX ls_entries_subject ON ls_entries (log_id, subject, position) "
        "WHERE subject IS NOT NULL",
        "CREATE INDEX ls_entries_key ON ls_entries (log_id, key, position) WHERE key IS NOT NULL",
        "CREATE TABLE ls_nodes (log_id BIGINT NOT NULL, level SMALLINT NOT NULL, "
        "idx BIGINT NOT NULL, hash BYTEA NOT NULL, PRIMARY KEY (log_id, level, idx))",
        'CREATE TABLE ls_side (ref TEXT COLLATE "C" PRIMARY KEY, subject TEXT COLLATE "C" '
        "NOT NULL, value BYTEA NOT NULL, position BIGINT)",
        "CREATE INDEX ls_side_subject ON ls_side (subject)",
    ),
)


class PostgresStore(SQLStore):
    """A ledgerstore in a PostgreSQL database."""

    placeholder = "%s"
    migrations = MIGRATIONS

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 8,
        connect_timeout: float = 30.0,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(dsn, max_payload_bytes=max_payload_bytes)
        self.dsn = dsn
        with self._errors():
            self._pool = psycopg_pool.ConnectionPool(
                dsn,
                min_size=1,
                max_size=max(1, pool_size),
                kwargs={"autocommit": True},
                timeout=connect_timeout,
                open=False,
            )
            self._pool.open(wait=True, timeout=connect_timeout)
        self._listener: threading.Thread | None = None
        self._listener_lock = threading.Lock()
        self._migrate()

    def _errors(self) -> AbstractContextManager[None]:
        return translate_errors(psycopg.Error, ERROR_MAP)

    @contextmanager
    def _read_cursor(self) -> Iterator[Cursor]:
        self._check_open()
        with self._errors(), self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    @contextmanager
    def _write_transaction(self) -> Iterator[Cursor]:
        self._check_open()
        with (
            self._errors(),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
            yield cur

    def _announcement(self, last_position: int) -> list[tuple[str, list[tuple[Any, ...]]]]:
        return [("SELECT pg_notify(?, ?)", [(CHANNEL, str(last_position))])]

    def _write_rows(self, cur: Cursor, writes: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        # One network round trip for all of an append's statements.
        with cur.connection.pipeline():
            super()._write_rows(cur, writes)

    def _scrub(self) -> None:
        with self._errors(), self._pool.connection() as conn:
            conn.execute("VACUUM FULL ls_side")
            try:
                # Close the WAL segment that holds the deleted rows, so the checkpoint can
                # remove it (needs pg_checkpoint / superuser rights; best effort otherwise).
                conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
            except psycopg.errors.InsufficientPrivilege:
                pass

    def _wait_for_change(self, generation: int, timeout: float) -> None:
        self._ensure_listener()
        super()._wait_for_change(generation, timeout)

    def _ensure_listener(self) -> None:
        """Start (once) the thread that turns NOTIFYs from other processes into wake-ups."""
        with self._listener_lock:
            if self._listener is None or not self._listener.is_alive():
                ready = threading.Event()
                self._listener = threading.Thread(
                    target=self._listen, args=(ready,), name="ledgerstore-listen", daemon=True
                )
                self._listener.start()
                ready.wait(10)

    def _listen(self, ready: threading.Event) -> None:
        try:
            conn = psycopg.connect(self.dsn, autocommit=True)
        except psycopg.Error:
            ready.set()  # subscribers fall back to polling
            return
        with conn:
            conn.execute(f"LISTEN {CHANNEL}")
            ready.set()
            while not self._closed:
                try:
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        self._bump()
                except psycopg.Error:
                    return

    def close(self) -> None:
        super().close()
        self._pool.close()
        listener = self._listener
        if listener is not None:
            listener.join(timeout=3)
