"""Semantic checks run on every parsed query.

- No expression is nested deeper than ``MAX_DEPTH`` (long operator chains included), so the
  recursive compiler and evaluator can never exhaust the stack.
- Aggregates never appear in WHERE or GROUP BY, and never inside another aggregate.
- In an aggregate query (GROUP BY, or a MAP using an aggregate) MAP, HAVING and ORDER BY may
  use a field only inside an aggregate or as part of the GROUP BY expression itself (the
  grouped expression is recognised by structural equality, e.g. ``GROUP BY e.data.region``
  allows ``MAP {region: e.data.region, n: COUNT()}``).
- In other queries ORDER BY uses no aggregate.
"""

from __future__ import annotations

from .ast import Aggregate, Expr, Field, Query, children, contains_aggregate, walk
from .errors import GdbqlSemanticError

MAX_DEPTH = 100


def validate(query: Query, source: str) -> None:
    """Raise ``GdbqlSemanticError`` when ``query`` breaks a rule listed in the module doc."""
    for expr in query.expressions():
        _check_depth(expr, source)
        _check_nested_aggregates(expr, source)
    _forbid_aggregates(query.where, "WHERE", source)
    _forbid_aggregates(query.group_by, "GROUP BY", source)
    order_exprs = [expr for expr, _ in query.order_by]
    if not query.is_aggregate:
        for expr in order_exprs:
            _forbid_aggregates(expr, "ORDER BY without GROUP BY or an aggregate MAP", source)
        return
    for grouped in [query.map, query.having, *order_exprs]:
        if grouped is not None:
            _check_grouped(grouped, query.group_by, source)


def _error(reason: str, node: Expr, source: str) -> GdbqlSemanticError:
    return GdbqlSemanticError(reason, source=source, position=node.position)


def _check_depth(expr: Expr, source: str) -> None:
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _error(
                f"expression nested too deeply (more than {MAX_DEPTH} levels)", node, source
            )
        stack.extend((child, depth + 1) for child in children(node))


def _check_nested_aggregates(expr: Expr, source: str) -> None:
    for node in walk(expr):
        if isinstance(node, Aggregate) and node.arg is not None:
            for inner in walk(node.arg):
                if isinstance(inner, Aggregate):
                    raise _error("aggregate functions cannot be nested", inner, source)


def _forbid_aggregates(expr: Expr | None, clause: str, source: str) -> None:
    if expr is None or not contains_aggregate(expr):
        return
    aggregate = next(node for node in walk(expr) if isinstance(node, Aggregate))
    raise _error(f"aggregate function {aggregate.func} not allowed in {clause}", aggregate, source)


def _check_grouped(expr: Expr, group_by: Expr | None, source: str) -> None:
    if (group_by is not None and expr == group_by) or isinstance(expr, Aggregate):
        return
    if isinstance(expr, Field):
        raise _error("a field outside an aggregate must be the GROUP BY expression", expr, source)
    for child in children(expr):
        _check_grouped(child, group_by, source)
