"""The embedded transport: the engine in this process, on a ledgerstore URL or path.

The engine raises :class:`~sapixdb.exceptions.SapixError` for bad requests; this transport
turns those into the same status and error triple the server sends, so the client decodes
both transports alike. Async calls run the engine in a worker thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.to_thread

import ledgerstore
from sapixdb.engine import SapixEngine
from sapixdb.exceptions import SapixError
from sapixdb.transports.base import (
    AsyncResponse,
    AsyncTransport,
    Request,
    Response,
    Transport,
    error_body,
)

__all__ = ["AsyncEmbeddedTransport", "EmbeddedTransport"]

_DONE: Any = object()
STREAM_THREADS = 1000


class EmbeddedTransport(Transport):
    """Calls :class:`SapixEngine` directly. ``poll`` bounds how long a stream read blocks."""

    supports_batch = True

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        engine: SapixEngine | None = None,
        poll: float = 0.5,
    ) -> None:
        if engine is None:
            if url is None:
                raise ValueError("an embedded transport needs a store URL, a path or an engine")
            engine = SapixEngine(ledgerstore.open_store(url))
            self._owns_engine = True
        else:
            self._owns_engine = False
        self.engine = engine
        self.poll = poll

    def handle(self, request: Request) -> Response:
        try:
            if request.operation == "stream":
                events = self.engine.stream(**request.args, poll=self.poll)
                return Response(200, events=_skip_idle(events))
            method = getattr(self.engine, request.operation)
            return Response(200, method(**request.args))
        except SapixError as exc:
            return Response(exc.status or 400, error_body(exc.message, exc.code or "ERROR"))

    def close(self) -> None:
        if self._owns_engine:
            self.engine.close()


def _skip_idle(events: Iterator[dict[str, Any] | None]) -> Iterator[dict[str, Any]]:
    try:
        for event in events:
            if event is not None:
                yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


class AsyncEmbeddedTransport(AsyncTransport):
    """The embedded transport for the async client: every engine call in a worker thread."""

    supports_batch = True

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        engine: SapixEngine | None = None,
        poll: float = 0.5,
    ) -> None:
        self._sync = EmbeddedTransport(url, engine=engine, poll=poll)
        self.engine = self._sync.engine
        # Each live subscriber holds a worker thread for up to ``poll`` seconds at a time; a
        # pool of their own keeps many subscribers from starving ordinary calls (and each
        # other) in anyio's default pool of 40 threads.
        self._stream_threads: anyio.CapacityLimiter | None = None

    async def handle(self, request: Request) -> AsyncResponse:
        if request.operation == "stream":
            # The raw engine stream yields None every ``poll`` seconds, so no worker-thread
            # call blocks for longer than that and cancelling a subscriber stays prompt.
            try:
                raw = await anyio.to_thread.run_sync(
                    lambda: self.engine.stream(**request.args, poll=self._sync.poll)
                )
            except SapixError as exc:
                body = error_body(exc.message, exc.code or "ERROR")
                return AsyncResponse(exc.status or 400, body)
            if self._stream_threads is None:
                self._stream_threads = anyio.CapacityLimiter(STREAM_THREADS)
            return AsyncResponse(200, events=_in_threads(raw, self._stream_threads))
        response = await anyio.to_thread.run_sync(self._sync.handle, request)
        return AsyncResponse(response.status, response.body)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._sync.close)


async def _in_threads(
    events: Iterator[dict[str, Any] | None], limiter: anyio.CapacityLimiter
) -> AsyncIterator[dict[str, Any]]:
    """Iterate a blocking engine stream one item per worker-thread call, skipping idles.

    A plain ``asyncio`` cancellation (``task.cancel()``) does not wait for the worker thread,
    so the ``next`` it was running may still be inside the generator when we close it: a lock
    makes the close wait for it (at most one poll interval).
    """
    busy = threading.Lock()

    def step() -> Any:
        with busy:
            return next(events, _DONE)

    def close() -> None:
        with busy:
            closer = getattr(events, "close", None)
            if closer is not None:
                closer()

    try:
        while True:
            item = await anyio.to_thread.run_sync(step, limiter=limiter)
            if item is _DONE:
                return
            if item is not None:
                yield item
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(close, limiter=limiter)
