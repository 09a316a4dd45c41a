"""Streaming aggregate state: each accumulator keeps O(1) memory per group.

- ``COUNT()`` counts rows; ``COUNT(x)`` counts rows where x is not null.
- ``SUM(x)`` adds the numbers among the values (null, strings, booleans… are skipped);
  over no numbers it is 0. ``AVG(x)`` is that sum divided (as ``/`` divides) by how many
  numbers there were, null over none.
- ``MIN(x)``/``MAX(x)`` take the least/greatest non-null value in the total order of
  ``values.sort_key``; null over none.
"""

from __future__ import annotations

from typing import Any, Protocol

from .ast import AggregateFunc
from .values import add_numbers, divide, is_number, sort_key


class Accumulator(Protocol):
    def add(self, value: Any) -> None: ...

    def result(self) -> Any: ...


class CountRows:
    def __init__(self) -> None:
        self._count = 0

    def add(self, value: Any) -> None:
        self._count += 1

    def result(self) -> Any:
        return self._count


class CountValues(CountRows):
    def add(self, value: Any) -> None:
        if value is not None:
            self._count += 1


class Sum:
    def __init__(self) -> None:
        self._total: Any = 0
        self._count = 0

    def add(self, value: Any) -> None:
        if is_number(value):
            self._count += 1
            self._total = add_numbers(self._total, value)

    def result(self) -> Any:
        return self._total


class Average(Sum):
    def result(self) -> Any:
        return divide(self._total, self._count) if self._count else None


class Extreme:
    """MIN (``greatest=False``) or MAX (``greatest=True``) in the total order."""

    def __init__(self, *, greatest: bool) -> None:
        self._greatest = greatest
        self._best: Any = None
        self._best_key: tuple[Any, ...] | None = None

    def add(self, value: Any) -> None:
        if value is None:
            return
        key = sort_key(value)
        if self._best_key is None or (
            key > self._best_key if self._greatest else key < self._best_key
        ):
            self._best, self._best_key = value, key

    def result(self) -> Any:
        return self._best


def new_accumulator(func: AggregateFunc, *, has_arg: bool) -> Accumulator:
    """A fresh accumulator for one aggregate call in one group."""
    if func == "COUNT":
        return CountValues() if has_arg else CountRows()
    if func == "SUM":
        return Sum()
    if func == "AVG":
        return Average()
    return Extreme(greatest=func == "MAX")
