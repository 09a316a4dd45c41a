"""Push-down planning: the part of a query a storage layer can answer with indexed SQL.

``plan(query)`` reads the top-level ``AND`` conjuncts of WHERE (``OR``/``NOT`` subtrees and
anything unrecognised stay residual) and turns these into ``Pushdown`` constraints:

- ``e.type == 'x'``, ``e.type IN ['x', 'y']``  → ``types``
- ``e.subject == '/x'``                         → ``subject_exact``
- ``e.subject IN ['/x', '/y']``                  → ``subjects``
- ``e.subject UNDER '/x'``                      → ``subject_under`` (exact)
- ``e.subject DESCENDANTS '/x'``                → ``subject_under`` (a superset)
- ``e.time <op> 'RFC 3339'``, ``e.time BETWEEN 'a' AND 'b'`` → ``time_min``/``time_max``
- ``e.id == '…'``                               → ``id_eq``
- a constant condition: true → nothing to push; false/null → ``types = ∅`` (no event)

Literals may be on either side of a comparison. The residual query is the whole query:
the storage layer narrows the events with the pushdown and then runs
``execute(plan.residual, rows)``, which re-checks every predicate, so a pushdown only has to
be sound: it never excludes an event the query keeps. ``Pushdown.matches`` is the reference
implementation the SQL must agree with (tests check the soundness against it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .ast import (
    Aggregate,
    ArrayLit,
    Between,
    Compare,
    CompareOp,
    Descendants,
    Expr,
    Field,
    In,
    Literal,
    Logical,
    Query,
    Under,
)
from .timestamps import normalize_timestamp, parse_instant
from .values import is_truthy, is_under

_FLIPPED: dict[str, CompareOp] = {
    "==": "==",
    "!=": "!=",
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
}


@dataclass(frozen=True)
class Pushdown:
    """Conjunctive constraints over indexed columns; None means unconstrained.

    ``types``: the event type is one of these (an empty set: no event matches).
    ``subject_exact``: the subject equals this. ``subjects``: the subject is one of these (an
    empty set: no event matches). ``subject_under``: the subject is this path
    or below it (segment-aware, as ``UNDER``; the path has no trailing ``/`` except ``/``).
    ``time_min``/``time_max``: bounds on the event time, canonical RFC 3339 UTC strings
    (nine fraction digits, ``Z``), so stored times compare with them as plain strings.
    ``id_eq``: the event id equals this.
    ``limit``: the storage layer may stop after this many matching events (natural order);
    set only when nothing else (residual WHERE, grouping, ordering, aggregates) could
    change which rows come out.
    ``count_only``: the query is ``MAP COUNT()`` with a fully pushed-down WHERE: its single
    row is the number of matching events (SQL ``COUNT(*)``).
    """

    types: frozenset[str] | None = None
    subject_exact: str | None = None
    subjects: frozenset[str] | None = None
    subject_under: str | None = None
    time_min: str | None = None
    time_min_inclusive: bool = True
    time_max: str | None = None
    time_max_inclusive: bool = True
    id_eq: str | None = None
    limit: int | None = None
    count_only: bool = False

    @property
    def matches_nothing(self) -> bool:
        """True when the constraints exclude every event."""
        return (self.types is not None and not self.types) or (
            self.subjects is not None and not self.subjects
        )

    @property
    def is_unconstrained(self) -> bool:
        """True when the constraints filter nothing (``limit``/``count_only`` aside)."""
        return self == Pushdown(limit=self.limit, count_only=self.count_only)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` satisfies the constraints (the reference for the SQL)."""
        return (
            self._matches_type(event.get("type"))
            and self._matches_subject(event.get("subject"))
            and (self.id_eq is None or event.get("id") == self.id_eq)
            and self._matches_time(event.get("time"))
        )

    def _matches_type(self, event_type: Any) -> bool:
        return self.types is None or (isinstance(event_type, str) and event_type in self.types)

    def _matches_subject(self, subject: Any) -> bool:
        if self.subject_exact is not None and subject != self.subject_exact:
            return False
        if self.subjects is not None and subject not in self.subjects:
            return False
        return self.subject_under is None or is_under(subject, self.subject_under)

    def _matches_time(self, time: Any) -> bool:
        instant = parse_instant(time) if isinstance(time, str) else None
        if instant is None:
            return True  # not a timestamp: the query compares it as a plain value
        return _respects(instant, self.time_min, self.time_min_inclusive, lower=True) and (
            _respects(instant, self.time_max, self.time_max_inclusive, lower=False)
        )


def _respects(instant: int, bound: str | None, inclusive: bool, *, lower: bool) -> bool:
    """Whether ``instant`` is on the allowed side of a lower or upper time bound."""
    limit = None if bound is None else parse_instant(bound)
    if limit is None:
        return True
    if instant == limit:
        return inclusive
    return instant > limit if lower else instant < limit


@dataclass(frozen=True)
class Plan:
    """How to run a query: narrow with ``pushdown``, then ``execute(residual, rows)``.

    ``where_fully_pushed`` says that the pushdown captures the WHERE clause exactly.
    """

    pushdown: Pushdown
    residual: Query
    where_fully_pushed: bool


def plan(query: Query) -> Plan:
    """Split ``query`` into storage-level constraints and the query to run over the rest."""
    pushdown, exact = _where_pushdown(query.where)
    limit = query.limit if exact and not query.is_aggregate and not query.order_by else None
    pushdown = replace(pushdown, limit=limit, count_only=_is_count_only(query, exact))
    return Plan(pushdown=pushdown, residual=query, where_fully_pushed=exact)


def _is_count_only(query: Query, exact: bool) -> bool:
    return (
        exact
        and query.group_by is None
        and query.map == Aggregate("COUNT", None)
        and not query.order_by
        and query.limit != 0
    )


def _conjuncts(where: Expr | None) -> Iterator[Expr]:
    stack = [] if where is None else [where]
    while stack:
        node = stack.pop()
        if isinstance(node, Logical) and node.op == "AND":
            stack.extend(reversed(node.operands))
        else:
            yield node


def _where_pushdown(where: Expr | None) -> tuple[Pushdown, bool]:
    pushdown, exact = Pushdown(), True
    for conjunct in _conjuncts(where):
        constraint = _constraint(conjunct)
        if constraint is None:
            exact = False
            continue
        pushdown, merged_exactly = _intersect(pushdown, constraint[0])
        exact = exact and merged_exactly and constraint[1]
    return pushdown, exact


def _constraint(node: Expr) -> tuple[Pushdown, bool] | None:
    """The pushdown of one conjunct and whether it captures the conjunct exactly."""
    match node:
        case Literal(value=value):
            return (Pushdown(), True) if is_truthy(value) else (Pushdown(types=frozenset()), True)
        case Compare():
            return _comparison(node)
        case In(value=Field(path=("type",)), options=ArrayLit(items=items)):
            types = [item.value for item in items if isinstance(item, Literal)]
            if len(types) == len(items) and all(isinstance(name, str) for name in types):
                return Pushdown(types=frozenset(str(name) for name in types)), True
        case In(value=Field(path=("subject",)), options=ArrayLit(items=items)):
            subjects = [item.value for item in items if isinstance(item, Literal)]
            if len(subjects) == len(items) and all(isinstance(name, str) for name in subjects):
                return Pushdown(subjects=frozenset(str(name) for name in subjects)), True
        case Under(value=Field(path=("subject",)), path=Literal(value=str() as path)):
            return Pushdown(subject_under=_normal_path(path)), True
        case Descendants(value=Field(path=("subject",)), path=Literal(value=str() as path)):
            return Pushdown(subject_under=_normal_path(path)), False
        case Between(value=Field(path=("time",)), low=Literal(value=str() as low)):
            return _time_range(low, node.high)
    return None


def _normal_path(path: str) -> str:
    return path.rstrip("/") or "/"


def _time_range(low: str, high_node: Expr) -> tuple[Pushdown, bool] | None:
    if not (isinstance(high_node, Literal) and isinstance(high_node.value, str)):
        return None
    time_min, time_max = normalize_timestamp(low), normalize_timestamp(high_node.value)
    if time_min is None or time_max is None:
        return None
    return Pushdown(time_min=time_min, time_max=time_max), True


def _comparison(node: Compare) -> tuple[Pushdown, bool] | None:
    if isinstance(node.left, Field) and isinstance(node.right, Literal):
        field, value, op = node.left, node.right.value, node.op
    elif isinstance(node.right, Field) and isinstance(node.left, Literal):
        field, value, op = node.right, node.left.value, _FLIPPED[node.op]
    else:
        return None
    if not isinstance(value, str):
        return None
    if field.path == ("time",):
        return _time_bound(op, value)
    if op != "==":
        return None
    if field.path == ("type",):
        return Pushdown(types=frozenset([value])), True
    if field.path == ("subject",):
        return Pushdown(subject_exact=value), True
    if field.path == ("id",):
        return Pushdown(id_eq=value), True
    return None


def _time_bound(op: str, value: str) -> tuple[Pushdown, bool] | None:
    bound = normalize_timestamp(value)
    if bound is None or op == "!=":
        return None
    lower = Pushdown(time_min=bound, time_min_inclusive=op != ">")
    upper = Pushdown(time_max=bound, time_max_inclusive=op != "<")
    if op == "==":
        return replace(lower, time_max=bound), True
    return (lower if op in (">", ">=") else upper), True


def _intersect(first: Pushdown, second: Pushdown) -> tuple[Pushdown, bool]:
    """Both sets of constraints at once; False when a conflict kept only ``first``'s."""
    subject_exact, exact_subject = _same(first.subject_exact, second.subject_exact)
    id_eq, exact_id = _same(first.id_eq, second.id_eq)
    subject_under, exact_under = _deeper(first.subject_under, second.subject_under)
    time_min, time_min_inclusive = _later_lower_bound(first, second)
    time_max, time_max_inclusive = _earlier_upper_bound(first, second)
    merged = Pushdown(
        types=_both_sets(first.types, second.types),
        subject_exact=subject_exact,
        subjects=_both_sets(first.subjects, second.subjects),
        subject_under=subject_under,
        time_min=time_min,
        time_min_inclusive=time_min_inclusive,
        time_max=time_max,
        time_max_inclusive=time_max_inclusive,
        id_eq=id_eq,
    )
    return merged, exact_subject and exact_id and exact_under


def _both_sets(
    first: frozenset[str] | None, second: frozenset[str] | None
) -> frozenset[str] | None:
    if first is None or second is None:
        return first if second is None else second
    return first & second


def _same(first: str | None, second: str | None) -> tuple[str | None, bool]:
    if first is None or second is None:
        return (first if second is None else second), True
    return first, first == second


def _deeper(first: str | None, second: str | None) -> tuple[str | None, bool]:
    if first is None or second is None:
        return (first if second is None else second), True
    if is_under(second, first):
        return second, True
    return first, is_under(first, second)


def _later_lower_bound(first: Pushdown, second: Pushdown) -> tuple[str | None, bool]:
    bounds = [
        (bound.time_min, bound.time_min_inclusive)
        for bound in (first, second)
        if bound.time_min is not None
    ]
    if not bounds:
        return None, True
    # Canonical timestamps order as strings; at a tie the exclusive bound is the tighter.
    return max(bounds, key=lambda bound: (bound[0], not bound[1]))


def _earlier_upper_bound(first: Pushdown, second: Pushdown) -> tuple[str | None, bool]:
    bounds = [
        (bound.time_max, bound.time_max_inclusive)
        for bound in (first, second)
        if bound.time_max is not None
    ]
    if not bounds:
        return None, True
    return min(bounds, key=lambda bound: (bound[0], bound[1]))
