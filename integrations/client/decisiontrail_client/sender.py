"""The background sender: takes records off the calling thread, batches them to the trail,
spools what the trail cannot take, and replays the spool in order when it can.

The calling thread only appends to a deque (a record is turned into JSON, redacted and passed
to the user's hook here, on the sender's thread). A batch, once formed, never changes: its
idempotency key is derived from its records' keys, and retries, the spool and replays all
send that same batch under that same key, so the service records it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decisiontrail_client.spool import Spool, SpooledBatch
from decisiontrail_client.transport import Outcome, Transport

log = logging.getLogger("decisiontrail_client")

Build = Callable[[], dict[str, Any] | None]  # a record, built off the calling thread
Prepare = Callable[[dict[str, Any]], dict[str, Any] | None]  # redaction and the user's hook

MAX_BACKOFF = 30.0
ATTEMPTS = 3  # quick retries of one batch before it goes to the spool


def batch_key(record_keys: Sequence[str]) -> str:
    """The idempotency key of a batch: a digest of its records' keys, in order."""
    return "dtb-" + hashlib.sha256("\n".join(record_keys).encode()).hexdigest()


@dataclass(frozen=True)
class Pending:
    key: str
    record: dict[str, Any] | Build


@dataclass(frozen=True)
class FlushResult:
    """What a ``flush`` left undelivered: ``pending`` in memory, ``spooled`` on disk, and the
    records ever ``dropped`` (the spool's bound was hit) or ``rejected`` (invalid)."""

    delivered: int
    pending: int
    spooled: int
    dropped: int
    rejected: int

    @property
    def complete(self) -> bool:
        return self.pending == 0 and self.spooled == 0


class Sender:
    def __init__(
        self,
        transport: Transport,
        spool_directory: os.PathLike[str] | str,
        *,
        prepare: Prepare | None = None,
        batch_size: int = 200,
        max_queue: int = 20_000,
        flush_interval: float = 0.5,
        max_spool_bytes: int = 1024 * 1024 * 1024,
        background: bool = True,
    ) -> None:
        self._transport = transport
        self._spool_directory = spool_directory
        self._max_spool_bytes = max_spool_bytes
        self._prepare = prepare
        self._batch_size = batch_size
        self._max_queue = max_queue
        self._interval = flush_interval
        self._background = background
        self.delivered = 0
        self.dropped = 0
        self.rejected = 0
        self.last_error = ""
        self._reset_runtime()
        self._closed = False
        self._said_unauthorized = False
        self._said_full = 0.0
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(reference))

    def _reset_runtime(self) -> None:
        self._queue: deque[Pending] = deque()
        self._wake = threading.Event()
        self._work = threading.Lock()  # one delivery pass at a time (thread or flush caller)
        self._spool_lock = threading.Lock()  # short: spool calls only, never the network
        self._taking = threading.Lock()  # taking records off the queue into the hand
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._spool: Spool | None = None
        self._in_hand = 0  # records taken off the queue, not yet delivered or spooled
        self._retry_at = 0.0
        self._backoff = 0.5

    # --- the calling thread ---------------------------------------------------------------

    def submit(self, item: Pending) -> None:
        """Hand a record over. Never blocks on the network; memory stays bounded (a full
        queue goes to the spool on this thread, which is rare and logged)."""
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._spill_from_caller(item)
            return
        queue.append(item)
        if self._thread is None and self._background and not self._closed:
            self._start()
        if len(queue) >= self._batch_size:
            self._wake.set()

    def _start(self) -> None:
        with self._idle:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="decisiontrail-sender", daemon=True
                )
                self._thread.start()

    def _spill_from_caller(self, item: Pending) -> None:
        items = [item]
        while len(items) < self._batch_size:
            try:
                items.append(self._queue.popleft())
            except IndexError:
                break
        log.warning(
            "decisiontrail: the send queue is full (%d records); spooling on the caller",
            self._max_queue,
        )
        batch = self._form(items, prepare=False)  # redaction and hook: on the sender's thread
        if batch is not None:
            self._spool_batches([batch])

    # --- delivery ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            with self._work:
                try:
                    self._pass()
                except Exception:  # a bug must not kill the sender; the records stay queued
                    log.exception("decisiontrail: send pass failed")
            with self._idle:
                self._idle.notify_all()
            if self._closed and not self._queue:
                return

    def _next_wait(self) -> float:
        if self._queue or self._spool_pending():
            return max(0.0, min(self._interval, self._retry_at - time.monotonic()))
        return self._interval

    def _pass(self) -> None:
        """Replay the spool (oldest first), then send what is queued: straight to the trail
        when the spool is empty and the trail up, else to the end of the spool."""
        if time.monotonic() >= self._retry_at:
            self._replay()
        while self._queue:
            items: list[Pending] = []
            with self._taking:  # flush never sees records neither queued nor in hand
                while self._queue and len(items) < self._batch_size:
                    items.append(self._queue.popleft())
                self._in_hand = len(items)
            batch = self._form(items)
            if batch is None:
                self._in_hand = 0
                continue
            if self._spool_pending() or time.monotonic() < self._retry_at:
                self._spool_batches([batch])
            else:
                left = self._deliver(batch)
                if left:
                    self._spool_batches(left)
            self._in_hand = 0

    def _form(self, items: list[Pending], *, prepare: bool = True) -> SpooledBatch | None:
        records, keys = [], []
        for item in items:
            try:
                record = item.record() if callable(item.record) else item.record
                if record is not None and prepare and self._prepare is not None:
                    record = self._prepare(record)
            except Exception:  # the application's data or hook; never its thread
                log.exception("decisiontrail: building a record failed; it is skipped")
                self.rejected += 1
                continue
            if record is not None:
                records.append(record)
                keys.append(item.key)
        if not records:
            return None
        return SpooledBatch(batch_key(keys), records, keys, prepared=prepare)

    def _prepared(self, batch: SpooledBatch) -> SpooledBatch | None:
        """A batch the caller spooled unprepared, redacted and hooked here (deterministically:
        a replay forms the same batch, under the same key)."""
        items = [
            Pending(key, record)
            for key, record in zip(batch.record_keys, batch.records, strict=True)
        ]
        return self._form(items)

    def _deliver(self, batch: SpooledBatch) -> list[SpooledBatch]:
        """Send one batch; returns what is left to spool ([] when done)."""
        for attempt in range(ATTEMPTS):
            result = self._transport.send(batch.key, batch.records)
            if result.outcome is Outcome.DELIVERED:
                self.delivered += len(batch.records)
                self._backoff = 0.5
                self._retry_at = 0.0
                self._said_unauthorized = False
                return []
            self.last_error = result.detail
            if result.outcome is Outcome.UNAUTHORIZED:
                if not self._said_unauthorized:
                    self._said_unauthorized = True
                    log.error(
                        "decisiontrail: the service refused the API key (%s); records are "
                        "kept in the spool until a valid key is configured",
                        result.detail,
                    )
                self._retry_at = time.monotonic() + MAX_BACKOFF
                return [batch]
            if result.outcome is Outcome.REJECTED:
                return self._split(batch, result.detail)
            wait = result.retry_after
            if (wait is not None and wait > 2.0) or attempt == ATTEMPTS - 1:
                self._down(wait)
                return [batch]
            time.sleep(wait if wait is not None else random.uniform(0.05, 0.2) * (attempt + 1))
        return [batch]  # pragma: no cover - the loop returns

    def _down(self, retry_after: float | None) -> None:
        delay = random.uniform(0.5, 1.0) * self._backoff
        self._backoff = min(MAX_BACKOFF, self._backoff * 2)
        self._retry_at = time.monotonic() + max(delay, retry_after or 0.0)

    def _split(self, batch: SpooledBatch, detail: str) -> list[SpooledBatch]:
        """The trail refused the batch as invalid, so nothing of it was recorded: send the
        halves on their own (each under its own key) until the bad record is alone."""
        if len(batch.records) == 1:
            self.rejected += 1
            log.error("decisiontrail: the service rejected a record (%s); it is dropped", detail)
            return []
        middle = len(batch.records) // 2
        left: list[SpooledBatch] = []
        for records, keys in (
            (batch.records[:middle], batch.record_keys[:middle]),
            (batch.records[middle:], batch.record_keys[middle:]),
        ):
            half = SpooledBatch(batch_key(keys), records, keys)
            left.extend(self._deliver(half) if not left else [half])
        return left

    def _replay(self) -> None:
        with self._spool_lock:
            spool = self._open_spool()
            spool.claim_orphans()
        while True:
            with self._spool_lock:
                head = spool.peek()
            if head is None:
                return
            path, spooled = head
            batch = spooled if spooled.prepared else self._prepared(spooled)
            left = self._deliver(batch) if batch is not None else []
            if left and left[0] is batch:
                return  # still down: try again after the backoff
            with self._spool_lock:
                if left:
                    spool.append(left)
                spool.ack(path)

    # --- the spool --------------------------------------------------------------------------

    def _open_spool(self) -> Spool:
        if self._spool is None:
            self._spool = Spool(Path(self._spool_directory), self._max_spool_bytes)
        return self._spool

    def _spool_pending(self) -> bool:
        spool = self._spool
        if spool is None:
            return False
        with self._spool_lock:
            return spool.has_pending()

    def _spool_batches(self, batches: list[SpooledBatch]) -> None:
        with self._spool_lock:
            written = self._open_spool().append(batches)
        lost = sum(len(batch.records) for batch in batches[written:])
        if lost:
            self.dropped += lost
            now = time.monotonic()
            if now - self._said_full > 60:
                self._said_full = now
                log.error(
                    "decisiontrail: the spool is full (%d bytes); %d records dropped so far",
                    self._max_spool_bytes,
                    self.dropped,
                )

    # --- flush and close --------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Deliver everything queued and spooled; return when done or at ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._retry_at = 0.0  # try now, whatever the backoff said
        if self._background and self._thread is not None and self._thread.is_alive():
            with self._idle:
                while not self._done():
                    self._wake.set()
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._idle.wait(0.2 if left is None else min(0.2, left))
        else:
            while True:
                with self._work:
                    self._pass()
                left = None if deadline is None else deadline - time.monotonic()
                if self._done() or (left is not None and left <= 0):
                    break
                time.sleep(max(0.0, min(self._retry_at - time.monotonic(), left or 1.0)))
        return self.result()

    def in_memory(self) -> int:
        """Records not yet delivered nor spooled (cheap: no spool read)."""
        with self._taking:
            return len(self._queue) + self._in_hand

    def _done(self) -> bool:
        with self._taking:
            if self._queue or self._in_hand:
                return False
        return not self._spool_pending()

    def result(self) -> FlushResult:
        spooled = 0
        if self._spool is not None:
            with self._spool_lock:
                spooled = self._spool.pending()
        return FlushResult(
            delivered=self.delivered,
            pending=len(self._queue) + self._in_hand,
            spooled=spooled,
            dropped=self.dropped,
            rejected=self.rejected,
        )

    def close(self, timeout: float | None = 10.0) -> FlushResult:
        """Flush, then put whatever is still in memory into the spool (the next sender on
        the same spool directory replays it) and release the spool."""
        if self._closed:
            return self.result()
        result = self.flush(timeout)
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._work:
            while self._queue:
                items = [self._queue.popleft() for _ in range(min(len(self._queue), 500))]
                batch = self._form(items, prepare=False)  # the next sender prepares it
                if batch is not None:
                    self._spool_batches([batch])
            result = self.result()
            with self._spool_lock:
                if self._spool is not None:
                    self._spool.close()
                    self._spool = None
        self._transport.close()
        return result

    def _forked(self) -> None:
        """In a forked child: the parent's thread, locks, queue and spool claims are the
        parent's. Start empty; the first record starts a sender of our own."""
        spool = self._spool
        self._reset_runtime()
        if spool is not None:
            with contextlib.suppress(Exception):
                spool.forget_after_fork()
        self._transport.after_fork()


def _after_fork(reference: weakref.ref[Sender]) -> None:
    sender = reference()
    if sender is not None:
        sender._forked()
