"""The service's writes to embedded stores, done in worker processes so that both cores work.

Sealing a batch, writing its records and graph edges to SapixDB and committing it to Genesis
DB are all CPU-bound Python (canonical JSON, hashing, chaining, Merkle tracking in
ledgerstore). In one process they take turns on the GIL. So with embedded stores the service
hands these writes to child processes, each holding its own embedded SDK client on the same
database (ledgerstore is safe for several processes appending to one SQLite file or
PostgreSQL database):

- :class:`SapixWorker` writes SapixDB records (a chunk at a time, while this process seals the
  next chunk) and graph edges (while Genesis DB commits). One process for both: two would
  only take turns on the database file's write lock, and sleep in its busy handler;
- :class:`GenesisWorker` runs Genesis DB commits, while this process's event loop reads and
  validates the next requests and seals the next batch.

Reads stay in this process. A child is started with the service (``spawn``: the service runs
threads, which ``fork`` does not copy safely), and only for an embedded store; over HTTP the
server does the work. A call no child takes (none could be started, or it died during the call)
raises :class:`WorkerUnavailable`; the caller then does the write in-process (see
:class:`decisiontrail.provenance.ProvenanceStore` and :mod:`decisiontrail.ledger.commit`,
which also find out whether a commit whose child died went in). A dead child is replaced on
the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from genesisdb import Client, GenesisDBError
from genesisdb.exceptions import error_for
from sapixdb import SapixClient, SapixError

log = logging.getLogger("decisiontrail")

Edge = tuple[str, str, str]  # (src, dst, edge type)
# Errors go back as plain values: exceptions with their own __init__ do not always survive
# pickling. A SapixError as (message, status, code); a Genesis DB error as (status, body).
_SapixFailure = tuple[str, int | None, str | None]
_GenesisFailure = tuple[int, dict[str, Any]]

GC_THRESHOLD = 100_000  # allocations between young-generation collections (default 700)
PARENT_CHECK_SECONDS = 0.2  # how often a worker checks that the service is still there


def collect_garbage_rarely() -> None:
    """Tune the cyclic garbage collector for a process that parses and writes batches.

    A batch of 1,000 decisions allocates hundreds of thousands of short-lived objects, few of
    them in cycles; at the default threshold the collector runs every 700 allocations and
    keeps re-scanning the survivors. Objects alive now (modules, settings, clients) are
    frozen out of every future collection.
    """
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 50, 100)


# --- in the child ---------------------------------------------------------------------------


def exit_with_parent() -> None:
    """Outlive no service: exit once the parent process is gone. Killed with SIGKILL it cannot
    say so, and a pool's worker would wait for calls forever, holding the database open. A
    write in progress is then rolled back by the store, as after any crash."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_sapix: SapixClient | None = None
_genesis: Client | None = None
_loop: asyncio.AbstractEventLoop | None = None  # runs the async Genesis DB client


def _open_sapix(location: str, api_key: str | None, agent: str) -> None:
    global _sapix
    exit_with_parent()
    _sapix = SapixClient(location, api_key=api_key, agent=agent)
    collect_garbage_rarely()


def _open_genesis(location: str, max_event_bytes: int) -> None:
    global _genesis, _loop
    from genesisdb.engine import Engine
    from genesisdb.transports.embedded import EmbeddedTransport

    exit_with_parent()
    engine = Engine.open(location, max_event_bytes=max_event_bytes)
    _genesis = Client(transport=EmbeddedTransport(engine=engine))
    _loop = asyncio.new_event_loop()
    collect_garbage_rarely()


def _sapix_client() -> SapixClient:
    assert _sapix is not None, "the worker's SapixDB client was not opened"
    return _sapix


def _write_records(collection: str, docs: list[dict[str, Any]]) -> list[str] | _SapixFailure:
    """``db.ingest`` one record, or ``write_batch`` several (one transaction)."""
    try:
        if len(docs) == 1:
            return [_sapix_client().ingest(collection, docs[0]).id]
        return [w.id for w in _sapix_client().collection(collection).write_batch(docs)]
    except SapixError as exc:
        return exc.message, exc.status, exc.code


def _add_edges(edges: list[Edge]) -> _SapixFailure | None:
    """``graph.add_edges``: all or none."""
    try:
        _sapix_client().graph.add_edges(edges)
    except SapixError as exc:
        return exc.message, exc.status, exc.code
    return None


def _commit_events(
    events: list[dict[str, Any]], preconditions: list[dict[str, Any]] | None
) -> int | _GenesisFailure:
    """``commit_events``; how many events were committed."""
    assert _genesis is not None and _loop is not None, "the worker's Genesis DB client is closed"
    try:
        return len(_loop.run_until_complete(_genesis.commit_events(events, preconditions)))
    except GenesisDBError as exc:
        return exc.status, exc.to_body()


def _ready() -> bool:
    return _sapix is not None or _genesis is not None


# --- in the service -------------------------------------------------------------------------


class WorkerUnavailable(Exception):
    """No child process took the call (none could be started, or it died): write in-process."""


class _WorkerProcess:
    """One child process, started on first use, replaced when it dies."""

    def __init__(self, name: str, initializer: Callable[..., None], arguments: tuple[Any, ...]):
        self.name = name
        self._initializer = initializer
        self._arguments = arguments
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.disabled = False  # set once a child could not be started at all

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=self._initializer,
                    initargs=self._arguments,
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    async def start(self) -> None:
        """Start the child now (instead of on the first write) and wait until it is ready."""
        with contextlib.suppress(WorkerUnavailable):
            await self._call(_ready)

    async def _call(self, function: Callable[..., Any], *arguments: Any) -> Any:
        if self.disabled:
            raise WorkerUnavailable(f"the {self.name} worker is disabled")
        try:
            pool = self._executor()
            running = asyncio.get_running_loop().run_in_executor(pool, function, *arguments)
        except (OSError, RuntimeError) as exc:  # e.g. spawn refused: no __main__ guard
            self.disabled = True
            log.warning("no %s worker process (%s); its writes stay in-process", self.name, exc)
            raise WorkerUnavailable(str(exc)) from exc
        try:
            return await running
        except BrokenProcessPool as exc:
            self._discard(pool)
            log.warning("the %s worker process died; the next write starts a new one", self.name)
            raise WorkerUnavailable(f"the {self.name} worker process died") from exc

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class SapixWorker(_WorkerProcess):
    """A child with an embedded SapixDB client, for the service's SapixDB writes."""

    def __init__(self, location: str, api_key: str | None, agent: str) -> None:
        super().__init__("SapixDB", _open_sapix, (location, api_key, agent))

    async def write_records(self, collection: str, docs: Sequence[dict[str, Any]]) -> list[str]:
        """Write records in the child, all or none; their SapixDB ids.

        Raises :class:`SapixError` if the store refused them (nothing was written) and
        :class:`WorkerUnavailable` if no child took the call (some may have been written if it
        died during the call).
        """
        result = await self._call(_write_records, collection, list(docs))
        if isinstance(result, tuple):
            raise SapixError(*result)
        ids: list[str] = result
        return ids

    async def add_edges(self, edges: Sequence[Edge]) -> None:
        """Write edges in the child, all or none (at most ``sapixdb.MAX_EDGE_BATCH``).

        Raises :class:`SapixError` if the store refused them and :class:`WorkerUnavailable`
        if no child took the call.
        """
        failure = await self._call(_add_edges, list(edges))
        if failure is not None:
            raise SapixError(*failure)


class GenesisWorker(_WorkerProcess):
    """A child with an embedded Genesis DB client, for the service's commits."""

    def __init__(self, location: str, max_event_bytes: int) -> None:
        super().__init__("Genesis DB", _open_genesis, (location, max_event_bytes))

    async def commit_events(
        self,
        events: Sequence[Mapping[str, Any]],
        preconditions: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """``commit_events`` in the child: all or none.

        Raises the Genesis DB error the commit raised (``PreconditionFailedError`` …) and
        :class:`WorkerUnavailable` if no child took the call (if it died during the call, the
        commit may have gone in: the caller must find out).
        """
        result = await self._call(
            _commit_events,
            [dict(event) for event in events],
            None if preconditions is None else [dict(p) for p in preconditions],
        )
        if isinstance(result, tuple):
            status, body = result
            raise error_for(status, body.get("code"))(
                str(body.get("error", "")), code=body.get("code"), details=body.get("details")
            )
