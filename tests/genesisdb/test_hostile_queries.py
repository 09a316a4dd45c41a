"""Queries that must not tie the server up: IN over literals is a set look-up, every query has
a budget checked inside evaluation, queries are capped per token and in all, a client that
goes away releases its query, and out-of-range numbers are a clear 400 or a defined null."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import genesisdb.gdbql.compiler as compiler_module
from genesisdb import QueryBudgetError, ServerBusyError, TooManyQueriesError
from genesisdb.engine import Engine
from genesisdb.gdbql import QueryBudget, execute, parse
from genesisdb.gdbql.values import equal
from genesisdb.server.queries import QueryGate
from tests.genesisdb.gdb_server import TOKENS, ServerProcess, start_server

VALUES: list[Any] = [0, 1, 1.0, -1, True, False, None, "1", "a", [1], [1.0], {"a": 1}, 2.5, []]


@pytest.mark.parametrize(
    "options",
    [
        "[1, null, [1.0], {a: 1.0}, -1, 'a']",
        "[true]",
        "(0, '1', [], 2.5)",
        "[]",
        "[-(-1), +2.5, {a: [1]}]",
    ],
)
def test_in_over_literals_answers_as_scanning_would(options: str) -> None:
    events = [{"data": {"v": value}} for value in VALUES]
    scanned = parse(f"STREAM e FROM events MAP e.data.v IN {options}")
    as_array = f"[{options[1:-1]}]" if options.startswith("(") else options
    (constants,) = execute(parse(f"STREAM e FROM events LIMIT 1 MAP {as_array}"), events)
    expected = [any(equal(value, option) for option in constants) for value in VALUES]
    assert list(execute(scanned, events)) == expected
    negated = list(execute(parse(f"STREAM e FROM events MAP e.data.v NOT IN {options}"), events))
    assert negated == [not found for found in expected]


def test_in_over_literals_is_one_lookup_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = compiler_module.sort_key

    def counting(value: object) -> tuple[Any, ...]:
        nonlocal calls
        calls += 1
        return real(value)

    monkeypatch.setattr(compiler_module, "sort_key", counting)
    literals = ", ".join(str(-n) for n in range(1000))
    query = parse(f"STREAM e FROM events WHERE e.data.i IN [{literals}] MAP e.data.i")
    events = [{"data": {"i": -n}} for n in range(0, 4000, 2)]
    assert list(execute(query, events)) == [-n for n in range(0, 1000, 2)]
    assert calls == 1000 + len(events)  # the options once, then one key per event


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = Engine.open(f"sqlite:///{tmp_path}/h.db")
    events = [
        {"source": "s", "subject": f"/h/{n}", "type": "t", "data": {"i": n}} for n in range(500)
    ]
    engine.commit(events)
    yield engine
    engine.close()


def test_a_work_budget_stops_evaluation_midway(engine: Engine) -> None:
    query = "STREAM e FROM events WHERE e.data.i % 7 == 3 MAP e.data.i"
    assert len(list(engine.query(query, budget=QueryBudget(max_events=500)))) == 71
    budget = QueryBudget(max_events=100)
    with pytest.raises(QueryBudgetError) as failure:
        list(engine.query(query, budget=budget))
    assert failure.value.code == "QUERY_BUDGET_EXCEEDED" and failure.value.status == 400
    assert budget.examined == 101  # stopped at the first event past the budget


def test_a_spent_time_budget_and_a_cancel_stop_the_query(engine: Engine) -> None:
    query = "STREAM e FROM events WHERE e.data.i >= 0 MAP e.data.i"
    with pytest.raises(QueryBudgetError, match="longer than"):
        list(engine.query(query, budget=QueryBudget(seconds=-1)))  # already spent
    budget = QueryBudget()
    rows = engine.query(query, budget=budget)
    assert next(iter(rows)) == 0
    budget.cancel()  # what the server does when the client disconnects
    with pytest.raises(QueryBudgetError) as failure:
        list(rows)
    assert failure.value.details == {"cancelled": True}


def test_preconditions_have_the_engine_budget(tmp_path: Path) -> None:
    engine = Engine.open(f"sqlite:///{tmp_path}/p.db", query_seconds=-1)
    try:
        engine.commit([{"source": "s", "subject": "/p", "type": "t", "data": {"i": 1}}])
        guard = {"query": "STREAM e FROM events WHERE e.data.i == 1 MAP COUNT() == 1"}
        with pytest.raises(QueryBudgetError):
            engine.commit(
                [{"source": "s", "subject": "/p", "type": "t", "data": {}}],
                [{"type": "isQueryResultTrue", "payload": guard}],
            )
        assert len(list(engine.stream("/p"))) == 1  # nothing was written
    finally:
        engine.close()


def test_the_gate_caps_queries_per_token_and_in_all() -> None:
    gate = QueryGate(max_queries=2, max_per_token=1)
    first = gate.enter("a")
    with pytest.raises(TooManyQueriesError) as per_token:
        gate.enter("a")
    assert per_token.value.status == 429
    second = gate.enter("b")
    with pytest.raises(ServerBusyError) as total:
        gate.enter("c")
    assert total.value.status == 503
    first()
    first()  # releasing twice releases once
    assert gate.running == 1
    gate.enter("a")()
    second()
    assert gate.running == 0


# --- over HTTP, against a real server -----------------------------------------------------


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("capped"), "--max-queries", "2", "--max-queries-per-token", "1"
    )
    big = "x" * 60_000
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as http:
        for batch in range(4):  # ~24 MB of rows: more than the sockets buffer
            events = [
                {"source": "s", "subject": f"/big/{batch}/{n}", "type": "t", "data": {"b": big}}
                for n in range(100)
            ]
            committed = http.post("/commit", json={"events": events}, headers=_auth("admin"))
            assert committed.status_code == 200
    yield server
    server.stop()


def _query(http: httpx.Client, query: str, role: str = "read") -> httpx.Response:
    return http.post("/q", json={"query": query}, headers=_auth(role))


def test_numbers_out_of_range_are_a_400_or_null(capped: ServerProcess) -> None:
    with httpx.Client(base_url=f"{capped.url}/api/v1", timeout=60) as http:
        for query in (
            "STREAM e FROM events LIMIT 9223372036854775808",
            "STREAM e FROM events LIMIT 1 MAP 99999999999999999999",
        ):
            answer = _query(http, query)
            assert answer.status_code == 400 and answer.json()["code"] == "INVALID_QUERY"
        last = "STREAM e FROM events LIMIT 9223372036854775807 MAP COUNT()"
        assert _query(http, last).content == b"400\n"
        overflow = (
            "STREAM e FROM events LIMIT 1 MAP [9223372036854775807 + 1, -(2 * 4611686018427387904)]"
        )
        answer = _query(http, overflow)
        assert answer.status_code == 200 and orjson.loads(answer.content) == [None, None]


def test_queries_are_capped_and_a_gone_client_releases_its_query(capped: ServerProcess) -> None:
    everything = "STREAM e FROM events MAP e.data.b"
    with httpx.Client(base_url=f"{capped.url}/api/v1", timeout=60) as http:
        with http.stream("POST", "/q", json={"query": everything}, headers=_auth("read")) as held:
            assert held.status_code == 200  # streaming; the rest of the body is not read
            again = _query(http, "STREAM e FROM events LIMIT 1 MAP 1", role="read")
            assert again.status_code == 429 and again.json()["code"] == "TOO_MANY_QUERIES"
            other = _query(http, "STREAM e FROM events LIMIT 1 MAP 1", role="write")
            assert other.status_code == 200 and other.content == b"1\n"
            with http.stream(
                "POST", "/q", json={"query": everything}, headers=_auth("write")
            ) as second:
                assert second.status_code == 200
                busy = _query(http, "STREAM e FROM events LIMIT 1 MAP 1", role="admin")
                assert busy.status_code == 503 and busy.json()["code"] == "SERVER_BUSY"
                assert http.get("/status", headers=_auth("read")).status_code == 200
        # Both clients went away mid-body: their queries end and release their places.
        answered = [_query(http, "STREAM e FROM events LIMIT 1 MAP 1").status_code]
        while answered[-1] != 200 and len(answered) < 500:
            answered.append(_query(http, "STREAM e FROM events LIMIT 1 MAP 1").status_code)
        assert answered[-1] == 200 and set(answered) <= {200, 429, 503}
