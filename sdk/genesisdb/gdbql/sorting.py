"""ORDER BY in bounded memory.

With a LIMIT no larger than the run size, a heap keeps the best ``limit`` rows. Otherwise an
external merge sort: rows are sorted in runs of ``run_size``, each run is pickled to an
anonymous temporary file, and the runs are merged with ``heapq.merge`` (at most
``MAX_FAN_IN`` files open at once; more runs are merged in passes). Every item carries its
arrival number, so sorting is stable and never compares the rows themselves.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any

DEFAULT_RUN_SIZE = 10_000
MAX_FAN_IN = 64

_Item = tuple[Any, int, Any]  # (sort key, arrival number, row)


@dataclass(frozen=True, slots=True, eq=False)
class Descending:
    """Wraps a sort key so that it sorts in reverse (for ``ORDER BY x DESC``)."""

    key: Any

    def __lt__(self, other: Descending) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and bool(self.key == other.key)

    def __hash__(self) -> int:
        return hash(self.key)


def sort_rows(
    keyed_rows: Iterable[tuple[Any, Any]], *, limit: int | None, run_size: int
) -> Iterator[Any]:
    """The rows of ``(key, row)`` pairs in key order (stable), at most ``limit`` of them."""
    items = ((key, arrival, row) for arrival, (key, row) in enumerate(keyed_rows))
    if limit is not None and limit <= run_size:
        return (row for _, _, row in heapq.nsmallest(limit, items))
    rows = external_sort(items, run_size=run_size)
    return rows if limit is None else islice(rows, limit)


def external_sort(items: Iterable[_Item], *, run_size: int) -> Iterator[Any]:
    """Sort ``items`` holding at most ``run_size`` of them in memory; yield their rows."""
    runs: list[IO[bytes]] = []
    try:
        buffer: list[_Item] = []
        for item in items:
            buffer.append(item)
            if len(buffer) >= run_size:
                runs.append(_spill(sorted(buffer)))
                buffer = []
        buffer.sort()
        if not runs:
            yield from (row for _, _, row in buffer)
            return
        if buffer:
            runs.append(_spill(buffer))
        _reduce_runs(runs)
        yield from (row for _, _, row in heapq.merge(*map(_read_run, runs)))
    finally:
        for run in runs:
            run.close()


def _spill(sorted_items: Iterable[_Item]) -> IO[bytes]:
    run = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it after merging
    for item in sorted_items:
        # One self-contained pickle per item: a shared (Un)pickler's memo would grow
        # without bound, and clearing it on one side only corrupts the other.
        pickle.dump(item, run, protocol=pickle.HIGHEST_PROTOCOL)
    run.seek(0)
    return run


def _read_run(run: IO[bytes]) -> Iterator[_Item]:
    while True:
        try:
            yield pickle.load(run)
        except EOFError:
            return


def _reduce_runs(runs: list[IO[bytes]]) -> None:
    """Merge runs in batches, in place, until at most ``MAX_FAN_IN`` remain."""
    while len(runs) > MAX_FAN_IN:
        batch = runs[:MAX_FAN_IN]
        runs.append(_spill(heapq.merge(*map(_read_run, batch))))
        del runs[:MAX_FAN_IN]
        for run in batch:
            run.close()
