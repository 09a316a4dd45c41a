"""A running observation: a replay of stored events, then the live change feed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import ledgerstore
from genesisdb.storage import EVENTS_LOG, Bounds, storage_error, under_filter
from ledgerstore import Entry

__all__ = ["Observation"]

Decode = Callable[[list[Entry]], list[dict[str, Any]]]


class Observation:
    """A running observation: replay first, then live events.

    :meth:`next` returns the next event, or None when none arrived within ``timeout`` (the
    caller decides when an idle connection needs a heartbeat); ``finished`` turns true once
    an upper bound has been passed.
    """

    def __init__(
        self,
        store: ledgerstore.LedgerStore,
        decode: Decode,
        bounds: Bounds,
        replay: Iterator[dict[str, Any]],
        start: int,
        end: int | None,
    ) -> None:
        self._decode = decode
        self._bounds = bounds
        self._replay = replay
        self._end = end
        self.finished = end is not None and end <= start
        self._subscription = (
            None
            if self.finished
            # All logs, filtered here: ledgerstore's per-log feed query ("log_id = ? AND
            # position > ?") is planned on the (log_id, seq) index and slows with the log's
            # size, while the all-logs query is a primary-key range.
            else store.subscribe(None, after_position=start, poll_interval=0.2)
        )
        self._under = under_filter(bounds.subject).subject_under

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, or None after ``timeout`` seconds without one (or when finished)."""
        for event in self._replay:
            return event
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished and self._subscription is not None:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                entry = self._subscription.next(remaining)
            except ledgerstore.LedgerStoreError as exc:
                raise storage_error(exc) from exc
            if entry is None:
                return None
            if self._end is not None and entry.position >= self._end:
                self.finished = True
                if entry.position > self._end:
                    return None
            if self._matches(entry):
                return self._decode([entry])[0]
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None

    def _matches(self, entry: Entry) -> bool:
        if entry.log != EVENTS_LOG:
            return False
        if self._bounds.latest_type is not None and entry.type != self._bounds.latest_type:
            return False
        if self._under is None:
            return True
        subject = entry.subject or ""
        return subject == self._under or subject.startswith(self._under + "/")

    def close(self) -> None:
        """Stop following; wakes a thread blocked in :meth:`next`."""
        self.finished = True
        if self._subscription is not None:
            self._subscription.close()
