"""GDBQL conformance: every query of ``gdbql_cases`` yields its hand-written rows."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from genesisdb.gdbql import evaluate_truthy, execute, parse
from tests.genesisdb.gdbql_cases import CASES, EVENTS, TRUTHY_CASES, Case


def _strict(value: object) -> object:
    """Tag every value with its type, so 1 == 1.0 == True no longer hide a wrong type."""
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    return (type(value).__name__, value)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 100
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_query_yields_expected_rows(case: Case) -> None:
    rows = list(execute(parse(case.query), EVENTS))
    assert _strict(rows) == _strict(case.rows)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_query_spills_to_disk_the_same(case: Case) -> None:
    rows = list(execute(parse(case.query), EVENTS, sort_run_size=2))
    assert _strict(rows) == _strict(case.rows)


def test_evaluation_leaves_events_untouched() -> None:
    before = copy.deepcopy(EVENTS)
    for case in CASES:
        list(execute(parse(case.query), EVENTS))
    assert before == EVENTS


@pytest.mark.parametrize(("query", "expected"), TRUTHY_CASES)
def test_evaluate_truthy(query: str, expected: bool) -> None:
    assert evaluate_truthy(parse(query), EVENTS) is expected


def test_evaluate_truthy_stops_after_the_first_row() -> None:
    consumed = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for event in EVENTS:
            consumed += 1
            yield event

    assert evaluate_truthy(parse("STREAM e FROM events MAP e.id"), counted()) is True
    assert consumed == 1
