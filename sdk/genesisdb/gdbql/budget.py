"""A per-query work budget, checked inside evaluation: time, events examined, cancellation.

A hostile query (a long ``IN`` list, a costly expression per event over a large store) must
not hold a worker thread for minutes, nor keep running once its client has gone. The
evaluator pulls every event through :meth:`QueryBudget.watch`, which counts it and, every
:data:`CHECK_EVERY` events (and on the first), checks the deadline and the cancel flag;
another thread (the server, on a client disconnect) may call :meth:`QueryBudget.cancel`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from .errors import QueryBudgetExceeded

__all__ = ["CHECK_EVERY", "QueryBudget"]

T = TypeVar("T")
#: Events between two looks at the clock (a look costs more than counting).
CHECK_EVERY = 64


class QueryBudget:
    """At most ``seconds`` of evaluation and ``max_events`` events examined (None: no bound)."""

    def __init__(self, *, seconds: float | None = None, max_events: int | None = None) -> None:
        self.seconds = seconds
        self.max_events = max_events
        self.examined = 0
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop the query at its next check (thread-safe)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise :class:`QueryBudgetExceeded` if the query must stop now."""
        if self._cancelled.is_set():
            raise QueryBudgetExceeded("the query was cancelled", cancelled=True)
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise QueryBudgetExceeded(f"the query ran longer than {self.seconds:g} s")

    def watch(self, events: Iterable[T]) -> Iterator[T]:
        """``events``, counted and checked as they are pulled."""
        limit = self.max_events
        for event in events:
            self.examined += 1
            if limit is not None and self.examined > limit:
                raise QueryBudgetExceeded(f"the query examined more than {limit} events")
            if self.examined % CHECK_EVERY == 1:
                self.check()
            yield event
