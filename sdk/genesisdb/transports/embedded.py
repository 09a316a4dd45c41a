"""The embedded transport: the engine in this process, on a SQLite file or PostgreSQL.

The engine blocks, so every call runs in a worker thread (anyio), and streams are pulled a
chunk at a time so the event loop never waits on the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import Any

import anyio.to_thread

from genesisdb import operations
from genesisdb.engine import Engine
from genesisdb.transports.base import AsyncTransport
from genesisdb.wire import ROUTES

__all__ = ["EmbeddedTransport"]

_CHUNK = 256
# How long one wait for a live event may block a worker thread; bounds how late a closed
# observation lets its thread go.
_POLL_SECONDS = 0.25


class EmbeddedTransport(AsyncTransport):
    """Runs operations on an :class:`Engine` opened from ``url`` (or the one given)."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        if engine is None:
            if url is None:
                raise ValueError("an embedded transport needs a storage URL or an engine")
            engine = Engine.open(url)
            self._owns_engine = True
        else:
            self._owns_engine = False
        self.engine = engine

    async def handle(self, operation: str, body: Any = None) -> AsyncIterator[Any]:
        if operation == "observe":
            async for event in self._observe(body):
                yield event
            return
        route = ROUTES.get(operation)
        result = await anyio.to_thread.run_sync(operations.run, self.engine, operation, body)
        if route is not None and route.streaming:
            rows: Iterator[Any] = result
            try:
                while True:
                    chunk = await anyio.to_thread.run_sync(_take, rows)
                    for row in chunk:
                        yield row
                    if len(chunk) < _CHUNK:
                        return
            finally:
                close = getattr(rows, "close", None)
                if close is not None:
                    close()
        else:
            yield result

    async def _observe(self, body: Any) -> AsyncIterator[Any]:
        subject, options = operations.stream_arguments(body)
        observation = await anyio.to_thread.run_sync(self.engine.observe, subject, options)
        try:
            while True:
                event = await anyio.to_thread.run_sync(observation.next, _POLL_SECONDS)
                if event is not None:
                    yield event
                elif observation.finished:
                    return
        finally:
            observation.close()

    async def aclose(self) -> None:
        if self._owns_engine:
            await anyio.to_thread.run_sync(self.engine.close)


def _take(rows: Iterator[Any]) -> list[Any]:
    return list(islice(rows, _CHUNK))
