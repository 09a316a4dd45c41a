"""Run a parsed GDBQL query over a stream of events, in bounded memory.

``execute`` yields result rows lazily: a plain query streams (WHERE, MAP, LIMIT event by
event); GROUP BY keeps only each group's value and aggregate state; ORDER BY with a small
LIMIT keeps a heap of LIMIT rows, and otherwise sorts externally (``sorting``).

Semantics
=========

Rows
    No MAP: the event itself. MAP: the value of its expression, which may be an object, an
    array or a bare scalar. Rows keep the events' order unless ORDER BY says otherwise.
    GROUP BY: one row per group, in order of each group's first event; a GROUP BY query
    without MAP yields the grouped values. An aggregate MAP without GROUP BY yields exactly
    one row, even over no events (see ``aggregates``: COUNT() is 0, SUM 0, AVG/MIN/MAX
    null). HAVING filters groups. LIMIT applies last.

Fields
    ``e.<field>`` reads one of the ten event fields; ``e.data.a.b``, ``e.data["a b"]`` and
    ``e.data.items[0]`` walk into data; a missing key, an index out of range or a step
    into a non-container gives null. ``e`` alone is the whole event.

Null and booleans: two-valued logic
    Every comparison is true or false, never null. ``null == null`` is true, ``null == x``
    is false for any other x, so ``e.data.missing != 1`` is true. Ordering comparisons
    (``< <= > >=``) are true only between two numbers or two strings; with a null, a
    boolean, an array, an object, or a number against a string they are false (so
    ``NOT (x > 1)`` holds for null x). ``AND``/``OR``/``NOT`` take the truthiness of their
    operands and yield booleans.

Equality and mixed types
    Structural: ``1 == 1.0``; ``true != 1``; ``'1' != 1`` (no coercion between numbers and
    strings); arrays and objects compare deeply. ``IN`` is membership by that equality in an
    array (``IN (a, b)`` is the array ``[a, b]``; a non-array right side gives false).
    ``BETWEEN a AND b`` is ``>= a`` and ``<= b``.

Time
    Stored ``e.time`` values are canonical RFC 3339 UTC strings. In a comparison, IN or
    BETWEEN where any operand is the field ``e.time`` itself, two strings that both parse as
    RFC 3339 (``Z`` or ``±HH:MM`` offsets, any number of fraction digits, truncated to
    nanoseconds) are compared as instants: ``'2026-01-01T00:00:00Z'``,
    ``'2026-01-01T00:00:00.000000000Z'`` and ``'2026-01-01T02:00:00+02:00'`` are all equal.
    Otherwise, e.g. against a string that is not a timestamp, the plain rules apply. ORDER
    BY, GROUP BY, MIN and MAX treat times as strings (canonical strings sort
    chronologically).

Subjects
    ``s UNDER '/a'``: s is ``/a`` or starts with ``/a/`` (segment-aware: ``/ab`` is not under
    ``/a``); ``UNDER '/'`` matches every subject starting with ``/``. ``DESCENDANTS`` is the
    same without the path itself. Trailing slashes of the path are ignored; non-strings
    give false.

Arithmetic
    ``+ - * / %`` on two numbers (booleans are not numbers). Integer results stay integers;
    ``/`` gives an integer when two integers divide exactly (``6 / 3`` is 2, ``7 / 2`` is
    3.5); ``%`` takes the dividend's sign. Division or remainder by zero, overflow, a
    non-finite result and any other operand types give null (``'a' * 2`` is null), never an
    error. ``+`` with a string on either side concatenates, spelling a number, boolean, array
    or object as its JSON text (``'n' + 1`` is ``'n1'``), but null propagates: ``'a' + null``
    is null, like every other operation on null. Unary minus negates numbers, else null.

Ordering (ORDER BY, MIN, MAX)
    A total order, so sorting never fails: null < booleans (false < true) < numbers <
    strings (by code point) < arrays (element-wise) < objects. ASC is the default; DESC
    reverses it; ties keep the input order.

Truthiness (WHERE, HAVING, AND/OR/NOT, preconditions)
    null, false, 0, 0.0, ``""``, ``[]`` and ``{}`` are false; every other value is true.
    ``evaluate_truthy`` is the truthiness of the first row, false when there is no row
    (it stops reading events as soon as the first row is known).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from .ast import Expr, Query
from .budget import QueryBudget
from .compiler import Compiled, EventCompiler, Group, GroupCompiler
from .sorting import DEFAULT_RUN_SIZE, Descending, sort_rows
from .values import is_truthy, sort_key

Event = Mapping[str, Any]


def execute(
    query: Query,
    events: Iterable[Event],
    *,
    sort_run_size: int = DEFAULT_RUN_SIZE,
    budget: QueryBudget | None = None,
) -> Iterator[Any]:
    """Yield the rows of ``query`` over ``events`` (see the module docstring).

    With a ``budget``, every event is pulled through it, so a query past its time or work
    budget (or cancelled) raises :class:`~.errors.QueryBudgetExceeded` mid-evaluation.
    """
    if sort_run_size < 1:
        raise ValueError("sort_run_size must be at least 1")
    if budget is not None:
        events = budget.watch(events)
    if query.is_aggregate:
        return _grouped_rows(query, events, sort_run_size)
    compiler = EventCompiler()
    project = compiler.compile(query.map) if query.map is not None else _whole_event
    order_key = _order_key(compiler, query.order_by)
    matching = _matching(query.where, events)
    return _finish(query, matching, project, order_key, sort_run_size)


def evaluate_truthy(
    query: Query, events: Iterable[Event], *, budget: QueryBudget | None = None
) -> bool:
    """``isQueryResultTrue``: the first row is truthy; no row is false."""
    rows = execute(query, events, budget=budget)
    try:
        for row in rows:
            return is_truthy(row)
        return False
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def _whole_event(event: Event) -> Event:
    return event


def _group_value(group: Group) -> Any:
    return group.key


def _matching(where: Expr | None, events: Iterable[Event]) -> Iterator[Event]:
    if where is None:
        return iter(events)
    condition = EventCompiler().compile(where)
    return (event for event in events if is_truthy(condition(event)))


def _order_key(compiler: EventCompiler, order_by: tuple[tuple[Expr, bool], ...]) -> Compiled | None:
    if not order_by:
        return None
    parts = [(compiler.compile(expr), descending) for expr, descending in order_by]

    def order_key(context: Any) -> tuple[Any, ...]:
        keys = ((sort_key(part(context)), descending) for part, descending in parts)
        return tuple(Descending(key) if descending else key for key, descending in keys)

    return order_key


def _finish(
    query: Query,
    contexts: Iterator[Any],
    project: Compiled,
    order_key: Compiled | None,
    run_size: int,
) -> Iterator[Any]:
    """Project, order and limit the matching events (or groups)."""
    if order_key is None:
        rows = map(project, contexts)
        return rows if query.limit is None else islice(rows, query.limit)
    keyed = ((order_key(context), project(context)) for context in contexts)
    return sort_rows(keyed, limit=query.limit, run_size=run_size)


def _grouped_rows(query: Query, events: Iterable[Event], run_size: int) -> Iterator[Any]:
    compiler = GroupCompiler(query.group_by)
    project = compiler.compile(query.map) if query.map is not None else _group_value
    having = compiler.compile(query.having) if query.having is not None else None
    order_key = _order_key(compiler, query.order_by)
    groups = _accumulate(query, compiler, _matching(query.where, events))
    if having is not None:
        groups = (group for group in groups if is_truthy(having(group)))
    return _finish(query, groups, project, order_key, run_size)


def _accumulate(query: Query, compiler: GroupCompiler, events: Iterator[Event]) -> Iterator[Group]:
    """Fold the events into groups (state per group only), then yield the groups."""
    per_event = EventCompiler()
    arguments = [
        per_event.compile(call.arg) if call.arg is not None else None
        for call in compiler.aggregates
    ]
    group_value = per_event.compile(query.group_by) if query.group_by is not None else None
    groups: dict[tuple[Any, ...], Group] = {}
    for event in events:
        value = group_value(event) if group_value is not None else None
        identity = sort_key(value)
        group = groups.get(identity)
        if group is None:
            group = groups[identity] = compiler.new_group(value)
        for argument, accumulator in zip(arguments, group.accumulators, strict=True):
            accumulator.add(argument(event) if argument is not None else None)
    if not groups and group_value is None:
        groups[()] = compiler.new_group(None)
    yield from groups.values()
