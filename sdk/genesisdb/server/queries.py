"""How the server runs GDBQL queries so that none can tie it up.

- **Concurrency caps.** :class:`QueryGate` admits at most ``max_queries_per_token`` queries
  per token (429 ``TOO_MANY_QUERIES`` past it) and ``max_queries`` in all (503
  ``SERVER_BUSY``); queries run on worker threads of their own (a limiter of
  ``max_queries``), so they never take the threads ``/status`` and the other routes need.
- **A budget per query**, checked inside evaluation (:class:`genesisdb.gdbql.QueryBudget`):
  past ``query_seconds`` the query stops with 400 ``QUERY_BUDGET_EXCEEDED``.
- **Cancel on disconnect.** While the first rows are computed (before the status is sent) a
  watcher cancels the budget when the client goes away; once streaming, the response's own
  disconnect handling cancels the read, and that cancels the budget too. Each pull of rows
  holds a lock the final close waits on, so the rows are never closed while a thread is in
  them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request

from genesisdb.exceptions import GenesisDBError, ServerBusyError, TooManyQueriesError
from genesisdb.gdbql import QueryBudget

__all__ = ["QueryGate", "RowPuller", "token_key"]

log = logging.getLogger("genesisdb.server")

#: Rows per pull from the evaluator (and per write to the client).
CHUNK = 256
#: How often the watcher asks whether the client is still there.
DISCONNECT_POLL_SECONDS = 0.1


def token_key(authorization: str | None) -> str:
    """Whom a query counts against: a digest of the presented credential (never the token)."""
    return hashlib.sha256((authorization or "").encode("utf-8", "replace")).hexdigest()


class QueryGate:
    """Counts the queries running, per token and in all (thread-safe)."""

    def __init__(self, max_queries: int, max_per_token: int) -> None:
        self.max_queries = max_queries
        self.max_per_token = max_per_token
        self.threads = anyio.CapacityLimiter(max_queries)
        self._lock = threading.Lock()
        self._running = 0
        self._per_token: Counter[str] = Counter()

    def enter(self, key: str) -> Callable[[], None]:
        """Admit one query for ``key``; returns its release (idempotent). 429 / 503 past a cap."""
        with self._lock:
            if self._per_token[key] >= self.max_per_token:
                raise TooManyQueriesError(
                    f"this token already runs {self.max_per_token} queries; wait for one to end",
                    details={"limit": self.max_per_token},
                )
            if self._running >= self.max_queries:
                raise ServerBusyError(
                    "the server runs as many queries as it allows; retry shortly",
                    details={"limit": self.max_queries},
                )
            self._running += 1
            self._per_token[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._running -= 1
                self._per_token[key] -= 1
                if not self._per_token[key]:
                    del self._per_token[key]

        return release

    @property
    def running(self) -> int:
        with self._lock:
            return self._running


class RowPuller:
    """Pulls a query's rows a chunk at a time on the gate's threads, cancellably."""

    def __init__(self, rows: Iterator[Any], budget: QueryBudget, gate: QueryGate) -> None:
        self._rows = rows
        self._budget = budget
        self._threads = gate.threads
        self._busy = threading.Lock()

    def _take(self) -> list[Any]:
        with self._busy:
            return list(islice(self._rows, CHUNK))

    def _close(self) -> None:
        with self._busy:  # waits for a pull still running in its thread
            close = getattr(self._rows, "close", None)
            if close is not None:
                close()

    async def pull(self) -> list[Any]:
        """The next chunk; a cancelled caller cancels the budget (the thread stops soon)."""
        try:
            return await anyio.to_thread.run_sync(
                self._take, abandon_on_cancel=True, limiter=self._threads
            )
        except anyio.get_cancelled_exc_class():
            self._budget.cancel()
            raise

    async def first(self, request: Request) -> list[Any]:
        """The first chunk, cancelling the budget if the client disconnects meanwhile."""

        async def watch() -> None:
            while not await request.is_disconnected():
                await anyio.sleep(DISCONNECT_POLL_SECONDS)
            self._budget.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            try:
                chunk = await self.pull()
            finally:
                group.cancel_scope.cancel()
        return chunk

    async def close(self) -> None:
        self._budget.cancel()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._close)

    async def lines(
        self, first: list[Any], encode: Callable[[Any], bytes], release: Callable[[], None]
    ) -> AsyncIterator[bytes]:
        """The body: encoded rows, a chunk per write; closes the rows and releases the gate."""
        chunk = first
        try:
            while chunk:
                yield b"".join(encode(row) for row in chunk)
                if len(chunk) < CHUNK:
                    return
                chunk = await self.pull()
        except GenesisDBError as exc:
            # The status line is gone; end the body early and say why in the log only.
            log.warning("query ended early: %s", exc.code)
        finally:
            await self.close()
            release()
