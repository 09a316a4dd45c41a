"""GDBQL parser: the AST it builds, its error reports, and that nothing but a GdbqlError
ever escapes, whatever the input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesisdb.gdbql import (
    GdbqlError,
    GdbqlSemanticError,
    GdbqlSyntaxError,
    Query,
    evaluate_truthy,
    execute,
    parse,
    plan,
)
from genesisdb.gdbql.ast import (
    Aggregate,
    ArrayLit,
    Between,
    Binary,
    Compare,
    Descendants,
    Field,
    In,
    Literal,
    Logical,
    Not,
    ObjectLit,
    Unary,
    Under,
)
from tests.genesisdb.gdbql_cases import CASES, EVENTS

S = "STREAM e FROM events "
TYPE = Field(("type",))
AMOUNT = Field(("data", "amount"))


def where(query: str) -> object:
    return parse(S + "WHERE " + query).where


def mapped(query: str) -> object:
    return parse(S + "MAP " + query).map


# -- the tree ------------------------------------------------------------------------------


def test_full_query_tree() -> None:
    query = parse(
        "STREAM ev FROM events WHERE ev.type == 'x' GROUP BY ev.data.k HAVING COUNT() > 1 "
        "ORDER BY SUM(ev.data.n) DESC, ev.data.k LIMIT 5 MAP {k: ev.data.k, n: COUNT()}"
    )
    k = Field(("data", "k"))
    assert query == Query(
        var="ev",
        where=Compare("==", TYPE, Literal("x")),
        group_by=k,
        having=Compare(">", Aggregate("COUNT", None), Literal(1)),
        order_by=((Aggregate("SUM", Field(("data", "n"))), True), (k, False)),
        limit=5,
        map=ObjectLit((("k", k), ("n", Aggregate("COUNT", None)))),
    )


def test_old_syntax_parses_to_the_same_tree() -> None:
    old = parse("from e in events where e.type == 'x' order by e.time top 3 project into e.id")
    new = parse("STREAM e FROM events WHERE e.type == 'x' ORDER BY e.time LIMIT 3 MAP e.id")
    assert old == new


def test_precedence() -> None:
    assert mapped("1 + 2 * -3") == Binary(
        "+", Literal(1), Binary("*", Literal(2), Unary("-", Literal(3)))
    )
    assert mapped("1 - 2 - 3") == Binary("-", Binary("-", Literal(1), Literal(2)), Literal(3))
    assert where("NOT e.type == 'a' OR e.type == 'b' AND e.id == 'c'") == Logical(
        "OR",
        (
            Not(Compare("==", TYPE, Literal("a"))),
            Logical(
                "AND",
                (Compare("==", TYPE, Literal("b")), Compare("==", Field(("id",)), Literal("c"))),
            ),
        ),
    )


def test_chains_of_one_operator_are_flat() -> None:
    chain = where(" OR ".join(f"e.id == '{n}'" for n in range(500)))
    assert isinstance(chain, Logical)
    assert len(chain.operands) == 500


def test_synonyms() -> None:
    assert where("e.type = 'a'") == where("e.type == 'a'")
    assert where("e.type <> 'a'") == where("e.type != 'a'")
    assert where("e.type IN ('a', 'b')") == where("e.type IN ['a', 'b']")
    assert where("e.type IN ('a', 'b')") == In(TYPE, ArrayLit((Literal("a"), Literal("b"))))


def test_membership_operators() -> None:
    assert where("e.type NOT IN ['a']") == Not(In(TYPE, ArrayLit((Literal("a"),))))
    assert where("e.data.amount NOT BETWEEN 1 AND 2") == Not(
        Between(AMOUNT, Literal(1), Literal(2))
    )
    assert where("e.subject UNDER '/a'") == Under(Field(("subject",)), Literal("/a"))
    assert where("e.subject DESCENDANTS '/a'") == Descendants(Field(("subject",)), Literal("/a"))


def test_between_bounds_bind_tighter_than_and() -> None:
    assert where("e.data.amount BETWEEN 1 AND 2 AND e.type == 'a'") == Logical(
        "AND", (Between(AMOUNT, Literal(1), Literal(2)), Compare("==", TYPE, Literal("a")))
    )


def test_field_paths() -> None:
    assert mapped("e") == Field(())
    assert mapped("e.data['a b'][0].c") == Field(("data", "a b", 0, "c"))
    assert mapped("e.data.from.limit") == Field(("data", "from", "limit"))


def test_literals() -> None:
    assert mapped("[1, 2.5, 'a', \"b\", true, FALSE, Null]") == ArrayLit(
        tuple(map(Literal, [1, 2.5, "a", "b", True, False, None]))
    )
    assert mapped("'\\u00e9\\ud83d\\ude00\\n'") == Literal("é😀\n")


def test_literal_types_are_not_confused() -> None:
    assert Literal(1) != Literal(True)
    assert Literal(1) != Literal(1.0)
    assert where("e.data.x + 1 == 2") != where("e.data.x + true == 2")


def test_positions_are_recorded_but_not_compared() -> None:
    query = parse(S + "MAP   e.data.amount")
    assert query.map == AMOUNT
    assert isinstance(query.map, Field)
    assert query.map.position == len(S) + 6


def test_aggregate_names_are_case_insensitive() -> None:
    assert mapped("count() + Sum(e.data.amount)") == Binary(
        "+", Aggregate("COUNT", None), Aggregate("SUM", AMOUNT)
    )


# -- syntax errors -------------------------------------------------------------------------

# (query, error position, what must be among the expected tokens, the token found)
SYNTAX_ERRORS = [
    ("", 0, ["'STREAM'", "'FROM'"], "end of query"),
    ("SELECT * FROM events", 0, ["'STREAM'", "'FROM'"], "'SELECT'"),
    ("STREAM FROM events", 7, ["an identifier"], "'FROM'"),
    ("STREAM e FROM evnts", 14, ["'events'"], "'evnts'"),
    ("STREAM e IN events", 9, ["'FROM'"], "'IN'"),
    ("FROM e events", 7, ["'IN'"], "'events'"),
    ("STREAM e FROM events WHERE", 26, ["an expression"], "end of query"),
    ("STREAM e FROM events WHERE (e.type == 'a' LIMIT 5", 42, ["')'", "'AND'", "'OR'"],
     "'LIMIT'"),
    ("STREAM e FROM events WHERE e.type == 'a' ORDER e.time", 47, ["'BY'"], "'e'"),
    ("STREAM e FROM events MAP {a 1}", 28, ["':'"], "'1'"),
    ("STREAM e FROM events MAP {a: 1", 30, ["'}'", "','"], "end of query"),
    ("STREAM e FROM events MAP [1, 2", 30, ["']'", "','"], "end of query"),
    ("STREAM e FROM events WHER e.type == 'a'", 21,
     ["'WHERE'", "'GROUP'", "'ORDER'", "'LIMIT'", "'MAP'", "end of query"], "'WHER'"),
    ("STREAM e FROM events WHERE e.type == == 'a'", 37, ["an expression"], "'=='"),
    ("STREAM e FROM events WHERE e.data.n BETWEEN 1 OR 2", 46, ["'AND'"], "'OR'"),
    ("STREAM e FROM events WHERE e.data. == 1", 35, ["a field name"], "'=='"),
    ("STREAM e FROM events MAP e.data[1.5]", 32, ["a string", "an integer"], "'1.5'"),
    ("STREAM e FROM events WHERE e.type == 'a' LIMIT 5 ORDER BY e.time", 49,
     ["'MAP'", "'PROJECT'", "end of query"], "'ORDER'"),
    ("STREAM e FROM events MAP COUNT(", 31, ["an expression", "')'"], "end of query"),
    ("STREAM e FROM events WHERE e.data.a < 1 < 2", 40, ["end of query"], "'<'"),
    ("STREAM e FROM events MAP 'x' 'y'", 29, ["end of query", "'+'"], "'y'"),
    ("STREAM e FROM events MAP SUM()", 29, ["an expression"], "')'"),
    ("FROM e IN events PROJECT e.id", 25, ["'INTO'"], "'e'"),
    ("STREAM e FROM events GROUP e.type", 27, ["'BY'"], "'e'"),
    ("STREAM e FROM events MAP {1: 2}", 26, ["a key"], "'1'"),
    ("STREAM e FROM events ORDER BY e.time DESC,", 42, ["an expression"], "end of query"),
    ("STREAM WHERE FROM events", 7, ["an identifier"], "'WHERE'"),
    ("STREAM e FROM events WHERE e.type == NOT", 37, ["an expression"], "'NOT'"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "position", "expected", "got"), SYNTAX_ERRORS)
def test_syntax_error_reports(query: str, position: int, expected: list[str], got: str) -> None:
    with pytest.raises(GdbqlSyntaxError) as caught:
        parse(query)
    error = caught.value
    assert error.position == position
    assert set(expected) <= set(error.expected)
    assert error.got == got
    assert f"(position {position}), got {got}" in str(error)
    assert (error.line, error.column) == (1, position + 1)


def test_message_names_position_and_expected_token() -> None:
    with pytest.raises(GdbqlSyntaxError) as caught:
        parse("STREAM e FROM events WHERE (e.type == 'a' LIMIT 5")
    assert str(caught.value) == "expected ')' at line 1, column 43 (position 42), got 'LIMIT'"
    assert caught.value.expected[0] == "')'"


def test_line_and_column_on_later_lines() -> None:
    query = "STREAM e FROM events\nWHERE e.type ==\n  AND e.id == 'x'"
    with pytest.raises(GdbqlSyntaxError) as caught:
        parse(query)
    error = caught.value
    assert (error.line, error.column, error.position) == (3, 3, query.index("AND"))
    assert str(error).startswith("expected an expression at line 3, column 3")


# (query, error position, text the message contains)
LEXICAL_ERRORS = [
    ("STREAM e FROM events WHERE e.type == 'a", 37, "unterminated string"),
    ('STREAM e FROM events MAP "abc', 25, "unterminated string"),
    ("STREAM e FROM events WHERE e.type @ 'a'", 34, "unexpected character '@'"),
    ("STREAM e FROM events MAP 'a\\qb'", 27, "invalid escape sequence"),
    ("STREAM e FROM events MAP '\\u12'", 26, "invalid \\u escape"),
    ("STREAM e FROM events MAP '\\ud800'", 26, "unpaired surrogate"),
    ("STREAM e FROM events MAP 12abc", 25, "invalid number"),
    ("STREAM e FROM events MAP 1e999", 25, "number out of range"),
    ("STREAM e FROM events MAP " + "9" * 500, 25, "number too long"),
    ("STREAM e FROM events MAP ٣", 25, "unexpected character"),
]


@pytest.mark.parametrize(("query", "position", "message"), LEXICAL_ERRORS)
def test_lexical_errors(query: str, position: int, message: str) -> None:
    with pytest.raises(GdbqlSyntaxError) as caught:
        parse(query)
    assert caught.value.position == position
    assert message in str(caught.value)


# -- semantic errors -----------------------------------------------------------------------

# (query, error position, text the message contains)
SEMANTIC_ERRORS = [
    (S + "WHERE COUNT() > 1", 27, "not allowed in WHERE"),
    (S + "WHERE x.type == 'a'", 27, "unknown name 'x'"),
    (S + "WHERE E.type == 'a'", 27, "unknown name 'E'"),
    (S + "WHERE e.color == 'red'", 27, "unknown field 'color'"),
    (S + "WHERE e.type.name == 'a'", 27, "has no sub-fields"),
    (S + "LIMIT -1", 27, "LIMIT must be a non-negative integer"),
    (S + "LIMIT 2.5", 27, "LIMIT must be a non-negative integer"),
    (S + "LIMIT 'ten'", 27, "LIMIT must be a non-negative integer"),
    (S + "LIMIT e.data.n", 27, "LIMIT must be a non-negative integer"),
    (S + "LIMIT true", 27, "LIMIT must be a non-negative integer"),
    (S + "HAVING COUNT() > 1", 21, "HAVING requires GROUP BY"),
    (S + "MAP FOO(e.id)", 25, "unknown function 'FOO'"),
    (S + "MAP SUM(COUNT())", 29, "cannot be nested"),
    (S + "GROUP BY COUNT() MAP 1", 30, "not allowed in GROUP BY"),
    (S + "GROUP BY e.type MAP {t: e.subject, n: COUNT()}", 45, "GROUP BY expression"),
    (S + "MAP {t: e.type, n: COUNT()}", 29, "GROUP BY expression"),
    (S + "ORDER BY COUNT() MAP e.id", 30, "not allowed in ORDER BY"),
    (S + "GROUP BY e.type ORDER BY e.time MAP e.type", 46, "GROUP BY expression"),
    (S + "GROUP BY e.type HAVING e.data.n > 1", 44, "GROUP BY expression"),
    (S + "MAP {a: 1, a: 2}", 32, "duplicate key 'a'"),
]


@pytest.mark.parametrize(("query", "position", "message"), SEMANTIC_ERRORS)
def test_semantic_errors(query: str, position: int, message: str) -> None:
    with pytest.raises(GdbqlSemanticError) as caught:
        parse(query)
    assert caught.value.position == position
    assert message in str(caught.value)


def test_error_tree() -> None:
    assert issubclass(GdbqlSyntaxError, GdbqlError)
    assert issubclass(GdbqlSemanticError, GdbqlError)
    assert not issubclass(GdbqlSemanticError, GdbqlSyntaxError)


# -- nesting -------------------------------------------------------------------------------

DEEP = [
    "(" * 10_000 + "1" + ")" * 10_000,
    "NOT " * 5_000 + "true",
    "-" * 10_000 + "1",
    "[" * 5_000 + "]" * 5_000,
    "{a: " * 5_000 + "1" + "}" * 5_000,
    "COUNT(" * 5_000 + ")" * 5_000,
    " + ".join(["1"] * 5_000),
    " * ".join(["e.data.n"] * 5_000),
    "e.data.n BETWEEN " * 2_000 + "1 AND 2" + " AND 3" * 2_000,
]


@pytest.mark.parametrize("expression", DEEP, ids=[text[:12] for text in DEEP])
def test_deep_nesting_is_a_gdbql_error(expression: str) -> None:
    with pytest.raises(GdbqlError):
        parse(S + "MAP " + expression)


def test_reasonable_nesting_is_fine() -> None:
    query = parse(S + "LIMIT 1 MAP " + "(" * 30 + "1" + ")" * 30 + " + " + "-" * 30 + "2")
    assert list(execute(query, EVENTS)) == [3]
    chain = " AND ".join(["e.type != 'x'"] * 2_000)
    assert len(list(execute(parse(S + "WHERE " + chain), EVENTS))) == 30


# -- fuzzing: only GdbqlError may escape, and whatever parses also runs --------------------

_WORDS_AND_SYMBOLS = """
    STREAM FROM IN events WHERE GROUP BY HAVING ORDER ASC DESC LIMIT TOP MAP PROJECT INTO
    AND OR NOT BETWEEN UNDER DESCENDANTS true false null COUNT() SUM( AVG( MIN( MAX( FOO(
    e ev x e.type e.subject e.time e.id e.source e.data e.data.amount e.data.items[0]
    e.data['a'] e.data.tags . == != = <> < <= > >= + - * / % ( ) [ ] { } , : ; 0 1 -1 2.5 1e3
"""
VOCABULARY = [*_WORDS_AND_SYMBOLS.split(), "'a'", "'/customer'", "'2026-01-05T00:00:00Z'", '"x"']
VALID = [case.query for case in CASES]


def _run_everything(text: str) -> None:
    try:
        query = parse(text)
    except GdbqlError:
        return
    list(execute(query, EVENTS))
    list(execute(query, EVENTS, sort_run_size=3))
    evaluate_truthy(query, EVENTS)
    planned = plan(query)
    assert all(planned.pushdown.matches(event) in (True, False) for event in EVENTS)


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_random_text(text: str) -> None:
    _run_everything(text)


@FUZZ
@given(st.lists(st.sampled_from(VOCABULARY), max_size=30))
def test_fuzz_token_soup(tokens: list[str]) -> None:
    _run_everything(" ".join(tokens))


@FUZZ
@given(st.lists(st.sampled_from(VOCABULARY), max_size=25))
def test_fuzz_token_soup_after_header(tokens: list[str]) -> None:
    _run_everything(S + " ".join(tokens))


@st.composite
def mutated_queries(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        insert = draw(st.one_of(st.just(""), st.sampled_from(VOCABULARY), st.text(max_size=3)))
        text = text[:start] + insert + text[end:]
    return text


@FUZZ
@given(mutated_queries())
def test_fuzz_mutated_valid_queries(text: str) -> None:
    _run_everything(text)
