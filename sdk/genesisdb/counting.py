"""COUNT() push-down: aggregate queries whose only aggregate is ``COUNT()`` run on SQL counts.

GDBQL's planner pushes a bare ``MAP COUNT()`` down (``Pushdown.count_only``) but not
``MAP COUNT() == 0``, ``GROUP BY e.type MAP {type: e.type, n: COUNT()}`` or ``HAVING
COUNT() > 1``: those would stream every matching event through Python. When the WHERE clause
is fully pushed down, every aggregate is ``COUNT()`` and the query groups by nothing or by
``e.type``, the answer depends only on the number of matching events per group. Then each
``COUNT()`` is rewritten to ``SUM(e.data.n)`` and the evaluator runs over one synthetic event
per group carrying that group's SQL count — in the order the groups' first events were
committed, which is the order the evaluator would have produced.

This uses GDBQL's AST (``genesisdb.gdbql.ast``), which the package does not re-export.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from genesisdb.gdbql import Query
from genesisdb.gdbql.ast import Aggregate, Field, walk

__all__ = ["GROUP_BY_TYPE", "count_rewrite"]

GROUP_BY_TYPE = Field(("type",))
_COUNT_FIELD = ("data", "n")


def _only_counts(query: Query) -> bool:
    expressions = [query.map, query.having, *(expr for expr, _ in query.order_by)]
    aggregates = [
        node
        for expr in expressions
        if expr is not None
        for node in walk(expr)
        if isinstance(node, Aggregate)
    ]
    return bool(aggregates) and all(
        node.func == "COUNT" and node.arg is None for node in aggregates
    )


def _swap(value: Any) -> Any:
    if isinstance(value, Aggregate) and value.func == "COUNT" and value.arg is None:
        return Aggregate("SUM", Field(_COUNT_FIELD), value.position)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            item.name: _swap(getattr(value, item.name))
            for item in dataclasses.fields(value)
            if item.init
        }
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(_swap(item) for item in value)
    return value


def count_rewrite(query: Query, where_fully_pushed: bool) -> Query | None:
    """The query over synthetic count events, or None when the rewrite does not apply.

    Feed the result ``{"type": T, "data": {"n": count}}`` per group (``e.type`` grouping), or
    one ``{"data": {"n": count}}`` when the count is positive (no grouping).
    """
    if not where_fully_pushed or not query.is_aggregate or not _only_counts(query):
        return None
    if query.group_by is not None and query.group_by != GROUP_BY_TYPE:
        return None
    rewritten: Query = _swap(dataclasses.replace(query, where=None))
    return rewritten


def synthetic_event(count: int, event_type: str | None = None) -> dict[str, Any]:
    """One synthetic event standing for ``count`` matching events."""
    event: dict[str, Any] = {"data": {"n": count}}
    if event_type is not None:
        event["type"] = event_type
    return event
