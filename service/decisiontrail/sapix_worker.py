"""SapixDB writes in a worker process, so that the second core does them.

Sealing a batch, writing its records to SapixDB, committing it to Genesis DB and writing its
graph edges are all CPU-bound Python (hashing, chaining, Merkle tracking in ledgerstore). In
one process they take turns on the GIL. With embedded SapixDB the service therefore hands its
SapixDB writes to one child process holding its own embedded client on the same database
(ledgerstore is safe for several processes appending to one SQLite file or PostgreSQL
database): the edges are written there while this process commits to Genesis DB, and the
records there while this process's event loop reads and validates the next requests. Reads
stay in this process.

The child is started with the service (``spawn``: the service runs threads, which ``fork``
does not copy safely), and only for embedded SapixDB; over HTTP the server does the work. A
call the child cannot take (it could not be started, or it died during the call) raises
:class:`SapixWorkerUnavailable`, and the caller does the write in-process (see
:class:`decisiontrail.provenance.ProvenanceStore`); a dead child is replaced on the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sapixdb import SapixClient, SapixError

log = logging.getLogger("decisiontrail")

Edge = tuple[str, str, str]  # (src, dst, edge type)
_Failure = tuple[str, int | None, str | None]  # a SapixError as (message, status, code)

_client: SapixClient | None = None  # the child's own client (set by _open_client)


def _open_client(location: str, api_key: str | None, agent: str) -> None:
    """In the child: open the SapixDB client its calls use."""
    global _client
    _client = SapixClient(location, api_key=api_key, agent=agent)


def _sapix() -> SapixClient:
    assert _client is not None, "the worker's client was not opened"
    return _client


# Errors go back as plain values: exceptions with their own __init__ do not always survive
# pickling.


def _write_records(collection: str, docs: list[dict[str, Any]]) -> list[str] | _Failure:
    """In the child: ``db.ingest`` one record, or ``write_batch`` several (one transaction)."""
    try:
        if len(docs) == 1:
            return [_sapix().ingest(collection, docs[0]).id]
        return [w.id for w in _sapix().collection(collection).write_batch(docs)]
    except SapixError as exc:
        return exc.message, exc.status, exc.code


def _add_edges(chunks: list[list[Edge]]) -> _Failure | None:
    """In the child: each chunk of edges in one call (all or none), in order."""
    try:
        for edges in chunks:
            _sapix().graph.add_edges(edges)
    except SapixError as exc:
        return exc.message, exc.status, exc.code
    return None


def _ready() -> bool:
    return _client is not None


class SapixWorkerUnavailable(Exception):
    """No child process took the call (none could be started, or it died): write in-process."""


class SapixWorker:
    """One child process with an embedded SapixDB client, for the service's SapixDB writes."""

    def __init__(self, location: str, api_key: str | None, agent: str) -> None:
        self._arguments = (location, api_key, agent)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.disabled = False  # set once a child could not be started at all

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_open_client,
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
        with contextlib.suppress(SapixWorkerUnavailable):
            await self._call(_ready)

    async def write_records(self, collection: str, docs: Sequence[dict[str, Any]]) -> list[str]:
        """Write records in the child, all or none; their SapixDB ids.

        Raises :class:`SapixError` if the store refused them (nothing was written) and
        :class:`SapixWorkerUnavailable` if no child took the call (some may have been written
        if it died during the call).
        """
        result = await self._call(_write_records, collection, list(docs))
        if isinstance(result, tuple):
            raise SapixError(*result)
        ids: list[str] = result
        return ids

    async def add_edges(self, chunks: Sequence[Sequence[Edge]]) -> None:
        """Write each chunk of edges (all or none) in the child, in order.

        Raises :class:`SapixError` on the first chunk the store refused and
        :class:`SapixWorkerUnavailable` if no child took the call.
        """
        if not chunks:
            return
        failure = await self._call(_add_edges, [list(chunk) for chunk in chunks])
        if failure is not None:
            raise SapixError(*failure)

    async def _call(self, function: Any, *arguments: Any) -> Any:
        if self.disabled:
            raise SapixWorkerUnavailable("the SapixDB worker is disabled")
        try:
            pool = self._executor()
            running = asyncio.get_running_loop().run_in_executor(pool, function, *arguments)
        except (OSError, RuntimeError) as exc:  # e.g. spawn refused: no __main__ guard
            self.disabled = True
            log.warning("no SapixDB worker process (%s); SapixDB writes stay in-process", exc)
            raise SapixWorkerUnavailable(str(exc)) from exc
        try:
            return await running
        except BrokenProcessPool as exc:
            self._discard(pool)
            log.warning("the SapixDB worker process died; the next write starts a new one")
            raise SapixWorkerUnavailable("the SapixDB worker process died") from exc

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
