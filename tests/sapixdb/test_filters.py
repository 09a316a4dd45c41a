"""``in`` filters: a set look-up that answers exactly what comparing one by one would."""

from __future__ import annotations

from typing import Any

import pytest

import sapixdb.filters as filters_module
from sapixdb import SapixClient
from sapixdb.filters import compile_filter

VALUES: list[Any] = [0, 1, 1.0, True, False, None, "1", "a", [1], [True], {"a": 1}, 2.5, [], {}]


@pytest.mark.parametrize(
    "options",
    [[1, None, [1], {"a": 1}, "a"], [True], [0, "1", [], 2.5], [], [1.0, False, {}]],
)
def test_in_answers_as_comparing_one_by_one(options: list[Any]) -> None:
    match = compile_filter([{"field": "v", "op": "in", "value": options}])
    assert match is not None
    for value in VALUES:
        one_by_one = any(filters_module._same(value, option) for option in options)
        assert match({"v": value}) is one_by_one, value
    assert match({"other": 1}) is False  # a missing field is in nothing


def test_in_does_not_compare_with_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    compared = 0
    real = filters_module._same

    def counting(a: Any, b: Any) -> bool:
        nonlocal compared
        compared += 1
        return real(a, b)

    monkeypatch.setattr(filters_module, "_same", counting)
    match = compile_filter([{"field": "n", "op": "in", "value": list(range(10_000))}])
    assert match is not None
    assert [n for n in range(0, 20_000, 1000) if match({"n": n})] == list(range(0, 10_000, 1000))
    assert compared == 0


def test_find_with_a_long_in_list(db: SapixClient, name: str) -> None:
    db.collection(name).write_batch([{"n": n} for n in range(50)])
    wanted = [n * 2 for n in range(10_000)]
    found = db.collection(name).find([{"field": "n", "op": "in", "value": wanted}], limit=100)
    assert sorted(r.data["n"] for r in found) == list(range(0, 50, 2))
