"""``DecisionTrail`` and ``AsyncDecisionTrail``: the typed client every integration sends through.

Configured by arguments or by the environment (``DECISIONTRAIL_URL``,
``DECISIONTRAIL_API_KEY``, ``DECISIONTRAIL_SPOOL_DIR``), as LangChain users expect from
Langfuse and LangSmith. Records are queued on the calling thread and sent by a background
sender (or, with ``synchronous=True`` for serverless handlers, before ``record`` returns);
what the trail cannot take goes to a durable spool and is replayed in order.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import os
import uuid
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from decisiontrail_client.redaction import Hook, Redaction, Redactor
from decisiontrail_client.sender import Build, FlushResult, Pending, Sender
from decisiontrail_client.transport import HttpTransport, Transport

DEFAULT_URL = "http://127.0.0.1:8700"


def record_key(*parts: str) -> str:
    """A deterministic idempotency key for a record, from what identifies it (its run)."""
    return "dtr-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:48]


def default_spool_directory(url: str, api_key: str | None) -> Path:
    """One spool per (service, key): a spool is only ever replayed where it was meant to go."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(f"{url}\n{api_key or ''}".encode()).hexdigest()[:16]
    return base / "decisiontrail" / "spool" / digest


class DecisionTrail:
    """Records decisions in a DecisionTrail service (or, with ``embedded=``, a local trail).

    ``record`` never waits for the network unless ``synchronous`` is set; ``flush(timeout)``
    returns once everything reached the trail (or at the timeout) and says what did not.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        spool_dir: str | os.PathLike[str] | None = None,
        synchronous: bool = False,
        redaction: Redaction | None = Redaction(),  # noqa: B008 - frozen, shared safely
        before_send: Hook | None = None,
        batch_size: int = 200,
        max_queue: int = 20_000,
        max_spool_bytes: int = 1024 * 1024 * 1024,
        flush_interval: float = 0.5,
        flush_at_exit: float | None = 5.0,
        embedded: str | os.PathLike[str] | None = None,
        tenant: str = "default",
        transport: Transport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("DECISIONTRAIL_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("DECISIONTRAIL_API_KEY") or None
        embedded = embedded or os.environ.get("DECISIONTRAIL_EMBEDDED_DIR") or None
        if transport is None and embedded is not None:
            from decisiontrail_client.embedded import EmbeddedTransport

            transport = EmbeddedTransport(Path(embedded), tenant=tenant)
        if transport is None:
            transport = HttpTransport(self.url, self.api_key)
        spool = spool_dir or os.environ.get("DECISIONTRAIL_SPOOL_DIR")
        if spool is None:
            where = f"embedded:{Path(embedded).resolve()}" if embedded else self.url
            spool = default_spool_directory(where, self.api_key)
        self.spool_dir = Path(spool)
        self.synchronous = synchronous
        redactor = Redactor(redaction) if redaction is not None else None
        self._sender = Sender(
            transport,
            self.spool_dir,
            prepare=_preparer(redactor, before_send),
            batch_size=batch_size,
            max_queue=max_queue,
            flush_interval=flush_interval,
            max_spool_bytes=max_spool_bytes,
            background=not synchronous,
        )
        if not synchronous and any(self.spool_dir.glob("seg-*.jsonl")):
            self._sender._start()  # records left by an earlier process: replay them now
        if flush_at_exit is not None:
            reference = weakref.ref(self)
            atexit.register(_close_at_exit, reference, flush_at_exit)

    # --- recording ---------------------------------------------------------------------------

    def record(self, decision: Mapping[str, Any], *, key: str | None = None) -> str:
        """Record one decision (the service's JSON envelope); returns its idempotency key.
        In synchronous mode it is sent (or spooled) before this returns."""
        key = key or _key_of(decision)
        self._sender.submit(Pending(key, dict(decision)))
        if self.synchronous:
            self._sender.flush(timeout=30)
        return key

    def record_batch(
        self, decisions: Iterable[Mapping[str, Any]], *, keys: Iterable[str] | None = None
    ) -> list[str]:
        given = list(keys) if keys is not None else None
        out = []
        for index, decision in enumerate(decisions):
            key = given[index] if given is not None else _key_of(decision)
            self._sender.submit(Pending(key, dict(decision)))
            out.append(key)
        if self.synchronous:
            self._sender.flush(timeout=30)
        return out

    def enqueue(self, key: str, build: Build) -> None:
        """For integrations: queue a record built later, on the sender's thread. Never sends
        on the calling thread, even in synchronous mode (the integration flushes when its
        unit of work ends)."""
        self._sender.submit(Pending(key, build))

    # --- delivery ----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> FlushResult:
        return self._sender.flush(timeout)

    def in_memory(self) -> int:
        """Records held in memory: neither delivered nor in the spool yet."""
        return self._sender.in_memory()

    def stats(self) -> FlushResult:
        return self._sender.result()

    def close(self, timeout: float | None = 10.0) -> FlushResult:
        """Flush, then spool whatever is left (the next client on this spool replays it)."""
        return self._sender.close(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncDecisionTrail:
    """The same client for ``async`` code: nothing here blocks the event loop (flushing
    waits in a worker thread)."""

    def __init__(self, url: str | None = None, api_key: str | None = None, **options: Any):
        self._sync = DecisionTrail(url, api_key, **options)

    @property
    def sync(self) -> DecisionTrail:
        return self._sync

    async def record(self, decision: Mapping[str, Any], *, key: str | None = None) -> str:
        if self._sync.synchronous:
            return await asyncio.to_thread(self._sync.record, decision, key=key)
        return self._sync.record(decision, key=key)

    async def record_batch(
        self, decisions: Iterable[Mapping[str, Any]], *, keys: Iterable[str] | None = None
    ) -> list[str]:
        if self._sync.synchronous:
            return await asyncio.to_thread(self._sync.record_batch, list(decisions), keys=keys)
        return self._sync.record_batch(decisions, keys=keys)

    async def flush(self, timeout: float | None = None) -> FlushResult:
        return await asyncio.to_thread(self._sync.flush, timeout)

    async def aclose(self, timeout: float | None = 10.0) -> FlushResult:
        return await asyncio.to_thread(self._sync.close, timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _key_of(decision: Mapping[str, Any]) -> str:
    """A record's key: from its run when it names one, else random (kept with the record,
    so a retry or a replay still carries the same key)."""
    run_id = decision.get("run_id")
    if isinstance(run_id, str) and run_id:
        return record_key(
            "run", str(decision.get("agent")), run_id, str(decision.get("kind", "")),
            str(decision.get("action")),
        )  # fmt: skip
    return record_key("random", uuid.uuid4().hex)


def _preparer(redactor: Redactor | None, hook: Hook | None) -> Any:
    if redactor is None and hook is None:
        return None

    def prepare(record: dict[str, Any]) -> dict[str, Any] | None:
        if redactor is not None:
            redactor.record(record)
        return hook(record) if hook is not None else record

    return prepare


def _close_at_exit(reference: weakref.ref[DecisionTrail], timeout: float) -> None:
    client = reference()
    if client is not None:
        client.close(timeout)
