"""GDBQL through the engine: SQL push-down plus streaming evaluation give exactly the rows of
the pure evaluator, for every query of the conformance table, on SQLite and PostgreSQL.

The table's 30 fixture events are loaded with ``restore`` (see ``chained_fixture``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from genesisdb import QueryError
from genesisdb import engine as engine_module
from genesisdb.counting import count_rewrite
from genesisdb.engine import Engine
from genesisdb.gdbql import execute, parse, plan
from tests.genesisdb.chained_fixture import FIXTURE
from tests.genesisdb.gdbql_cases import CASES, Case


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('queries')}/q.db"
        database = None
    else:
        cluster = request.getfixturevalue("pg_cluster")
        database = cluster.create_database()
        url = cluster.url(database)
    engine = Engine.open(url)
    assert engine.restore(FIXTURE) == len(FIXTURE)
    yield engine
    engine.close()
    if database is not None:
        cluster.drop_database(database)


def test_the_fixture_streams_back_unchanged(engine: Engine) -> None:
    assert list(engine.stream("/")) == FIXTURE


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_engine_rows_equal_the_evaluator(engine: Engine, case: Case) -> None:
    expected = list(execute(parse(case.query), FIXTURE))
    assert list(engine.query(case.query)) == expected


W = "STREAM e FROM events WHERE "


@pytest.mark.parametrize(
    "query",
    [
        W + "e.time >= '2026-01-03T10:00:00Z' MAP COUNT()",
        W + "e.time > '2026-01-03T10:00:00Z' AND e.time < '2026-01-05T00:00:00Z' MAP e.id",
        W + "e.time BETWEEN '2026-01-01T09:30:00Z' AND '2026-01-02T00:00:00+00:00'",
        W + "e.time == '2026-01-01T12:00:00.000Z' MAP e.subject",
        W + "e.time <= '1999-01-01T00:00:00Z' MAP COUNT()",
        W + "e.time >= '2999-01-01T00:00:00Z'",
        W + "e.type IN ['note', 'order-placed'] AND e.subject UNDER '/customer' MAP COUNT()",
        W + "e.id == '018f2a6c-0000-7000-8000-000000000007' MAP e.type",
        W + "e.subject == '/customer/42' AND e.subject == '/customer/7'",
        W + "e.subject UNDER '/' LIMIT 3 MAP e.id",
    ],
)  # fmt: skip
def test_pushed_down_ranges(engine: Engine, query: str) -> None:
    assert list(engine.query(query)) == list(execute(parse(query), FIXTURE))


def test_a_bad_query_is_a_query_error(engine: Engine) -> None:
    with pytest.raises(QueryError) as failure:
        engine.query("STREAM e FROM events WHERE e.type ==")
    assert failure.value.details["position"] == 36


def test_queries_see_referenced_data_until_erased(tmp_path: Path) -> None:
    engine = Engine.open(f"sqlite:///{tmp_path}/r.db")
    try:
        engine.commit([{"source": "s", "subject": "/u/1", "type": "t", "data": {"email": "a@b"},
                        "options": {"storeDataAsReference": True}}])  # fmt: skip
        query = "STREAM e FROM events WHERE e.data.email == 'a@b' MAP COUNT()"
        assert list(engine.query(query)) == [1]
        engine.erase("/u")
        assert list(engine.query(query)) == [0]
    finally:
        engine.close()


COUNTED = [
    W + "e.subject UNDER '/customer' GROUP BY e.type MAP {t: e.type, n: COUNT()}",
    W + "e.type IN ['note', 'order-placed'] GROUP BY e.type ORDER BY COUNT() DESC MAP e.type",
    W + "e.time >= '2026-01-03T00:00:00Z' GROUP BY e.type HAVING COUNT() > 1 MAP COUNT() * 10",
    W + "e.subject UNDER '/nowhere' MAP COUNT() == 0",
    W + "e.subject UNDER '/customer' MAP {n: COUNT(), big: COUNT() > 3}",
    "STREAM e FROM events GROUP BY e.type LIMIT 2 MAP [e.type, COUNT()]",
]


@pytest.mark.parametrize("query", COUNTED)
def test_count_only_aggregates_run_on_sql_counts(engine: Engine, query: str) -> None:
    planned = plan(parse(query))
    assert count_rewrite(planned.residual, planned.where_fully_pushed) is not None
    assert list(engine.query(query)) == list(execute(parse(query), FIXTURE))


@pytest.mark.parametrize(
    "query",
    [
        "STREAM e FROM events GROUP BY e.subject MAP COUNT()",
        W + "e.data.amount > 10 MAP COUNT() == 0",
        "STREAM e FROM events GROUP BY e.type MAP SUM(e.data.amount)",
        "STREAM e FROM events MAP COUNT(e.data.amount)",
    ],
)
def test_other_aggregates_are_not_rewritten(query: str) -> None:
    planned = plan(parse(query))
    assert count_rewrite(planned.residual, planned.where_fully_pushed) is None


def test_the_scan_plan_gives_the_same_rows(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every range forced onto the in-order scan (not the metadata index), nothing changes."""
    monkeypatch.setattr(engine_module, "_SCAN_FACTOR", 0)
    for case in CASES:
        assert list(engine.query(case.query)) == list(execute(parse(case.query), FIXTURE)), (
            case.name
        )
    for subject in ("/", "/customer", "/customer/42", "/customers", "/nowhere"):
        expected = [event for event in FIXTURE if _under(event["subject"], subject)]
        assert list(engine.stream(subject)) == expected
    latest = list(engine.stream("/customer", {"latestByEventType": "customer-added"}))
    monkeypatch.setattr(engine_module, "_SCAN_FACTOR", 10**9)
    assert latest == list(engine.stream("/customer", {"latestByEventType": "customer-added"}))


def _under(subject: str, path: str) -> bool:
    base = path.rstrip("/")
    return not base or subject == base or subject.startswith(base + "/")
