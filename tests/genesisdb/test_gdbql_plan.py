"""GDBQL push-down planning (soundness against the evaluator) and bounded-memory execution."""

from __future__ import annotations

import tempfile
import tracemalloc
import weakref
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesisdb.gdbql import Pushdown, execute, parse, plan, sorting
from genesisdb.gdbql.sorting import Descending, sort_rows
from tests.genesisdb.gdbql_cases import EVENTS, event_id

S = "STREAM e FROM events "
MIDNIGHT_5 = "2026-01-05T00:00:00.000000000Z"


def pushdown(query: str) -> Pushdown:
    return plan(parse(query)).pushdown


# -- extraction ----------------------------------------------------------------------------

# (query, expected pushdown, WHERE fully pushed)
EXTRACTIONS = [
    (S + "WHERE e.type == 'a'", Pushdown(types=frozenset({"a"})), True),
    (S + "WHERE 'a' == e.type", Pushdown(types=frozenset({"a"})), True),
    (S + "WHERE e.type IN ['a', 'b']", Pushdown(types=frozenset({"a", "b"})), True),
    (S + "WHERE e.type IN ('a')", Pushdown(types=frozenset({"a"})), True),
    (S + "WHERE e.type IN ['a', 1]", Pushdown(), False),
    (S + "WHERE e.type IN ['a', 'b'] AND e.type == 'a'", Pushdown(types=frozenset({"a"})), True),
    (S + "WHERE e.type == 'a' AND e.type == 'b'", Pushdown(types=frozenset()), True),
    (S + "WHERE e.type != 'a'", Pushdown(), False),
    (S + "WHERE e.type == 1", Pushdown(), False),
    (S + "WHERE e.subject == '/x'", Pushdown(subject_exact="/x"), True),
    (S + "WHERE e.subject == '/x' AND e.subject == '/y'", Pushdown(subject_exact="/x"), False),
    (S + "WHERE e.subject IN ['/x', '/y']", Pushdown(subjects=frozenset({"/x", "/y"})), True),
    (S + "WHERE e.subject IN ['/x', 1]", Pushdown(), False),
    (S + "WHERE e.subject IN ['/x', '/y'] AND e.subject IN ['/y', '/z']",
     Pushdown(subjects=frozenset({"/y"})), True),
    (S + "WHERE e.subject IN ['/x'] AND e.subject IN ['/y']", Pushdown(subjects=frozenset()),
     True),
    (S + "WHERE e.subject UNDER '/x/'", Pushdown(subject_under="/x"), True),
    (S + "WHERE e.subject UNDER '/'", Pushdown(subject_under="/"), True),
    (S + "WHERE e.subject DESCENDANTS '/x'", Pushdown(subject_under="/x"), False),
    (S + "WHERE e.subject UNDER '/a' AND e.subject UNDER '/a/b'",
     Pushdown(subject_under="/a/b"), True),
    (S + "WHERE e.subject UNDER '/a/b' AND e.subject UNDER '/a'",
     Pushdown(subject_under="/a/b"), True),
    (S + "WHERE e.subject UNDER '/a' AND e.subject UNDER '/b'", Pushdown(subject_under="/a"),
     False),
    (S + "WHERE e.subject UNDER '/a' AND e.subject == '/a/b'",
     Pushdown(subject_under="/a", subject_exact="/a/b"), True),
    (S + "WHERE e.time >= '2026-01-05T02:00:00+02:00'", Pushdown(time_min=MIDNIGHT_5), True),
    (S + "WHERE e.time > '2026-01-05T00:00:00Z'",
     Pushdown(time_min=MIDNIGHT_5, time_min_inclusive=False), True),
    (S + "WHERE e.time > '2026-01-05T00:00:00Z' AND e.time >= '2026-01-05T00:00:00.0Z'",
     Pushdown(time_min=MIDNIGHT_5, time_min_inclusive=False), True),
    (S + "WHERE e.time >= '2026-01-01T00:00:00Z' AND e.time >= '2026-01-05T00:00:00Z'",
     Pushdown(time_min=MIDNIGHT_5), True),
    (S + "WHERE '2026-01-05T00:00:00Z' > e.time",
     Pushdown(time_max=MIDNIGHT_5, time_max_inclusive=False), True),
    (S + "WHERE e.time <= '2026-01-05T00:00:00Z' AND e.time < '2026-01-09T00:00:00Z'",
     Pushdown(time_max=MIDNIGHT_5), True),
    (S + "WHERE e.time BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-05T00:00:00Z'",
     Pushdown(time_min="2026-01-01T00:00:00.000000000Z", time_max=MIDNIGHT_5), True),
    (S + "WHERE e.time == '2026-01-05T00:00:00Z'",
     Pushdown(time_min=MIDNIGHT_5, time_max=MIDNIGHT_5), True),
    (S + "WHERE e.time != '2026-01-05T00:00:00Z'", Pushdown(), False),
    (S + "WHERE e.time > '2026-01-05'", Pushdown(), False),
    (S + "WHERE e.time > 5", Pushdown(), False),
    (S + "WHERE e.id == 'abc'", Pushdown(id_eq="abc"), True),
    (S + "WHERE e.type == 'a' OR e.type == 'b'", Pushdown(), False),
    (S + "WHERE NOT e.type == 'a'", Pushdown(), False),
    (S + "WHERE e.data.type == 'a'", Pushdown(), False),
    (S + "WHERE (e.type == 'a' AND e.subject UNDER '/x') AND e.id == 'i'",
     Pushdown(types=frozenset({"a"}), subject_under="/x", id_eq="i"), True),
    (S + "WHERE e.type == 'a' AND (e.subject == '/x' OR e.id == 'i')",
     Pushdown(types=frozenset({"a"})), False),
    (S + "WHERE true", Pushdown(), True),
    (S + "WHERE null", Pushdown(types=frozenset()), True),
    (S, Pushdown(), True),
]  # fmt: skip


@pytest.mark.parametrize(("query", "expected", "exact"), EXTRACTIONS)
def test_extraction(query: str, expected: Pushdown, exact: bool) -> None:
    planned = plan(parse(query))
    assert planned.pushdown == expected
    assert planned.where_fully_pushed is exact
    assert planned.residual == parse(query)


# (query, pushed-down limit)
LIMITS = [
    (S + "LIMIT 3", 3),
    (S + "WHERE e.type == 'a' LIMIT 3 MAP e.id", 3),
    (S + "WHERE e.type == 'a' AND e.time > '2026-01-01T00:00:00Z' LIMIT 0", 0),
    (S + "WHERE e.type == 'a' AND e.data.n > 1 LIMIT 3", None),
    (S + "WHERE e.subject DESCENDANTS '/a' LIMIT 3", None),
    (S + "WHERE e.type == 'a' ORDER BY e.time LIMIT 3", None),
    (S + "GROUP BY e.type LIMIT 3", None),
    (S + "LIMIT 3 MAP COUNT()", None),
    (S + "WHERE e.type == 'a'", None),
]


@pytest.mark.parametrize(("query", "limit"), LIMITS)
def test_limit_is_pushed_only_when_nothing_else_filters(query: str, limit: int | None) -> None:
    assert pushdown(query).limit == limit


# (query, count_only)
COUNTS = [
    (S + "MAP COUNT()", True),
    (S + "WHERE e.type == 'a' AND e.subject UNDER '/x' MAP COUNT()", True),
    (S + "WHERE e.data.n == 1 MAP COUNT()", False),
    (S + "MAP COUNT() + 1", False),
    (S + "MAP COUNT(e.id)", False),
    (S + "MAP {n: COUNT()}", False),
    (S + "GROUP BY e.type MAP COUNT()", False),
    (S + "LIMIT 0 MAP COUNT()", False),
    (S + "LIMIT 1 MAP count()", True),
    (S + "MAP e.id", False),
]


@pytest.mark.parametrize(("query", "count_only"), COUNTS)
def test_count_only(query: str, count_only: bool) -> None:
    assert pushdown(query).count_only is count_only


def test_matches_nothing_and_unconstrained() -> None:
    assert pushdown(S + "WHERE e.type IN []").matches_nothing
    assert not pushdown(S + "WHERE e.type IN ['a']").matches_nothing
    assert pushdown(S + "LIMIT 4").is_unconstrained
    assert not pushdown(S + "WHERE e.id == 'x'").is_unconstrained


def test_matches_keeps_events_whose_time_is_not_a_timestamp() -> None:
    bounds = pushdown(S + "WHERE e.time > '2026-01-05T00:00:00Z'")
    assert bounds.matches({"time": "not a time"})
    assert bounds.matches({"time": None})
    assert not bounds.matches({"time": "2026-01-04T00:00:00Z"})
    assert bounds.matches({"time": "2026-01-05T00:00:00.000000001Z"})


def test_canonical_bounds_order_like_instants() -> None:
    """The SQL compares canonical strings; they must order like the instants they name."""
    times = sorted({event["time"] for event in EVENTS})
    canonical = [pushdown(S + f"WHERE e.time == '{time}'").time_min for time in times]
    assert canonical == times


# -- soundness: the pushdown never drops a row the query would return ---------------------

TYPES = ["order-placed", "note", "customer-added", "decision-made", "nope"]
PATHS = ["/", "", "/customer", "/customer/", "/customer/42", "/customers", "/decisions/credit"]
PATHS += ["/customer/42/orders/7", "/nope", "/notes/3", "customer"]
TIMES = ["2026-01-05T00:00:00Z", "2026-01-05T07:00:00.000000000Z", "2026-01-05T09:00:00+02:00"]
TIMES += ["2026-01-02T10:15:30.5Z", "2026-01-06T23:59:59.999999999Z", "2026-01-01T00:00:00Z"]
TIMES += ["2026-01-09t06:30:00z", "2026-01-05", "garbage", "2026-01-10T00:00:00-01:00"]
IDS = [event_id(number) for number in (1, 4, 23, 30)] + ["nope"]
OPS = ["==", "!=", "<", "<=", ">", ">=", "=", "<>"]


def _quoted(values: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(values).map(lambda value: f"'{value}'")


ATOMS = st.one_of(
    st.builds("e.type == {}".format, _quoted(TYPES)),
    st.builds("{} == e.type".format, _quoted(TYPES)),
    st.builds("e.type != {}".format, _quoted(TYPES)),
    st.lists(_quoted(TYPES), max_size=3).map(lambda items: f"e.type IN [{', '.join(items)}]"),
    st.builds("e.subject == {}".format, _quoted(PATHS)),
    st.builds("e.subject UNDER {}".format, _quoted(PATHS)),
    st.builds("e.subject DESCENDANTS {}".format, _quoted(PATHS)),
    st.builds("e.time {} {}".format, st.sampled_from(OPS), _quoted(TIMES)),
    st.builds("{} {} e.time".format, _quoted(TIMES), st.sampled_from(OPS)),
    st.builds("e.time BETWEEN {} AND {}".format, _quoted(TIMES), _quoted(TIMES)),
    st.builds("e.id == {}".format, _quoted(IDS)),
    st.sampled_from(["e.data.amount > 50", "e.data.tier == 'gold'", "true", "false", "null"]),
)
CONDITIONS = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda parts: " AND ".join(parts)),
        st.lists(inner, min_size=2, max_size=3).map(lambda parts: " OR ".join(parts)),
        inner.map("NOT ({})".format),
        inner.map("({})".format),
    ),
    max_leaves=6,
)
TAILS = st.sampled_from(
    [
        "",
        "MAP e.id",
        "LIMIT 2 MAP e.id",
        "LIMIT 0",
        "ORDER BY e.time DESC LIMIT 3 MAP e.id",
        "ORDER BY e.data.amount MAP [e.id, e.data.amount]",
        "MAP COUNT()",
        "LIMIT 1 MAP COUNT()",
        "GROUP BY e.type MAP {t: e.type, n: COUNT()}",
        "GROUP BY e.source HAVING COUNT() > 1 ORDER BY COUNT() DESC LIMIT 2",
        "MAP [MIN(e.time), MAX(e.time), SUM(e.data.amount)]",
    ]
)


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, str]:
    conjuncts = draw(st.lists(CONDITIONS, min_size=1, max_size=4))
    where = " AND ".join(conjuncts)
    return where, f"{S}WHERE {where} {draw(TAILS)}"


@settings(max_examples=500, deadline=None)
@given(queries())
def test_pushdown_is_sound(generated: tuple[str, str]) -> None:
    where, text = generated
    query = parse(text)
    planned = plan(query)
    kept = [event for event in EVENTS if planned.pushdown.matches(event)]
    expected = list(execute(query, EVENTS))
    assert list(execute(planned.residual, kept)) == expected
    if planned.where_fully_pushed:
        filtered = execute(parse(f"{S}WHERE {where} MAP e.id"), EVENTS)
        assert [event["id"] for event in kept] == list(filtered)
    if planned.pushdown.limit is not None:
        assert list(execute(planned.residual, kept[: planned.pushdown.limit])) == expected
    if planned.pushdown.count_only:
        assert expected == [len(kept)]


# -- external sort ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-5, 5), st.integers(-3, 3)), max_size=60),
    st.integers(1, 7),
    st.none() | st.integers(0, 70),
)
def test_sort_rows_matches_a_stable_sort(
    keys: list[tuple[int, int]], run_size: int, limit: int | None
) -> None:
    keyed = [((first, Descending(second)), index) for index, (first, second) in enumerate(keys)]
    expected = [index for index, _ in sorted(enumerate(keys), key=lambda p: (p[1][0], -p[1][1]))]
    rows = list(sort_rows(iter(keyed), limit=limit, run_size=run_size))
    assert rows == expected[:limit]


_TEMPORARY_FILE = tempfile.TemporaryFile


class _TrackedFiles:
    def __init__(self) -> None:
        self.files: list[IO[bytes]] = []

    def __call__(self) -> IO[bytes]:
        run = _TEMPORARY_FILE()
        self.files.append(run)
        return run


@pytest.fixture
def spills(monkeypatch: pytest.MonkeyPatch) -> _TrackedFiles:
    tracked = _TrackedFiles()
    monkeypatch.setattr(tempfile, "TemporaryFile", tracked)
    return tracked


def test_order_by_without_limit_spills_sorted_runs(spills: _TrackedFiles) -> None:
    query = parse(S + "ORDER BY e.data.amount DESC, e.time MAP e.id")
    in_memory = list(execute(query, EVENTS))
    assert list(execute(query, EVENTS, sort_run_size=4)) == in_memory
    assert len(spills.files) == 8  # ceil(30 / 4) runs
    assert all(run.closed for run in spills.files)


def test_many_runs_are_merged_in_passes(
    spills: _TrackedFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sorting, "MAX_FAN_IN", 3)
    query = parse(S + "ORDER BY e.subject, e.time DESC MAP [e.subject, e.time]")
    assert list(execute(query, EVENTS, sort_run_size=1)) == list(execute(query, EVENTS))
    assert len(spills.files) > 30
    assert all(run.closed for run in spills.files)


def test_abandoned_sort_closes_its_files(spills: _TrackedFiles) -> None:
    rows = execute(parse(S + "ORDER BY e.time DESC MAP e.id"), EVENTS, sort_run_size=5)
    assert next(rows) == event_id(30)
    rows.close()  # type: ignore[attr-defined]
    assert spills.files
    assert all(run.closed for run in spills.files)


def test_order_by_with_small_limit_never_spills(spills: _TrackedFiles) -> None:
    query = parse(S + "ORDER BY e.time DESC LIMIT 3 MAP e.id")
    assert list(execute(query, EVENTS, sort_run_size=5)) == [event_id(n) for n in (30, 29, 28)]
    assert spills.files == []


def test_sort_run_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sort_run_size"):
        execute(parse(S), EVENTS, sort_run_size=0)


# -- bounded memory -----------------------------------------------------------------------

MANY = 200_000


class _Event(dict[str, Any]):
    """A dict that can be weakly referenced, so the stream can count live events."""

    __slots__ = ("__weakref__",)
    __hash__ = object.__hash__  # type: ignore[assignment]  # by identity, for the WeakSet


class _Counted:
    """A synthetic event stream recording how far it was consumed and how many of the
    events it produced were still alive at any point (an evaluator that materialised its
    input would keep them all)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.consumed = 0
        self.most_alive = 0
        self._alive: weakref.WeakSet[_Event] = weakref.WeakSet()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for number in range(self.total):
            self.consumed += 1
            event = _synthetic_event(number)
            self._alive.add(event)
            self.most_alive = max(self.most_alive, len(self._alive))
            yield event


def _synthetic_event(number: int) -> _Event:
    return _Event(
        source="urn:load",
        subject=f"/load/{number % 100}",
        type=f"type-{number % 7}",
        specversion="1.0",
        id=str(number),
        time=f"2026-01-01T00:00:{number % 60:02d}.000000000Z",
        datacontenttype="application/json",
        predecessorhash="0" * 64,
        data={"i": number, "k": number % 13, "amount": number % 1000},
        hash="0" * 64,
    )


def _peak_bytes(run: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


GROUPED = S + "GROUP BY e.data.k ORDER BY e.data.k MAP {k: e.data.k, n: COUNT()}"


def test_group_by_over_many_events_keeps_only_group_state() -> None:
    stream = _Counted(MANY)
    rows = list(execute(parse(GROUPED), stream))
    assert rows == [{"k": k, "n": len(range(k, MANY, 13))} for k in range(13)]
    assert stream.consumed == MANY
    assert stream.most_alive <= 5  # a handful of references in flight, never the stream


def test_count_over_many_events() -> None:
    stream = _Counted(MANY)
    rows = list(execute(parse(S + "WHERE e.type == 'type-3' MAP COUNT()"), stream))
    assert rows == [len(range(3, MANY, 7))]
    assert stream.most_alive <= 5  # a handful of references in flight, never the stream


def test_order_by_with_limit_over_many_events() -> None:
    stream = _Counted(MANY)
    rows = list(execute(parse(S + "ORDER BY e.data.amount DESC LIMIT 3 MAP e.data.i"), stream))
    assert rows == [999, 1999, 2999]
    assert stream.most_alive <= 5  # a handful of references in flight, never the stream


def test_plain_queries_stream() -> None:
    stream = _Counted(MANY)
    rows = execute(parse(S + "WHERE e.data.k == 0 MAP e.data.i"), stream)
    assert list(islice(rows, 5)) == [0, 13, 26, 39, 52]
    assert stream.consumed == 53


def test_group_by_memory_peak() -> None:
    total = 20_000  # materialised, these events alone would take well over 10 MB
    rows, peak = _peak_bytes(lambda: list(execute(parse(GROUPED), _Counted(total))))
    assert sum(row["n"] for row in rows) == total
    assert peak < 1_000_000


def test_order_by_with_limit_memory_peak() -> None:
    query = parse(S + "ORDER BY e.data.amount DESC, e.data.i LIMIT 100 MAP e.data.i")
    rows, peak = _peak_bytes(lambda: list(execute(query, _Counted(20_000))))
    assert rows[:3] == [999, 1999, 2999]
    assert peak < 1_000_000


def test_order_by_without_limit_sorts_in_bounded_memory() -> None:
    total = 20_000
    query = parse(S + "ORDER BY e.data.amount, e.data.i DESC MAP [e.data.amount, e.data.i]")

    def check_order() -> int:
        previous, count = (-1, 0), 0
        for amount, number in execute(query, _Counted(total), sort_run_size=1_000):
            assert (amount, -number) > previous
            previous, count = (amount, -number), count + 1
        return count

    count, peak = _peak_bytes(check_order)
    assert count == total
    assert peak < 2_000_000
