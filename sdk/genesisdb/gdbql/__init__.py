"""GDBQL, Genesis DB's query language: parse, check, plan and evaluate queries.

>>> query = parse("STREAM e FROM events WHERE e.type == 'order.placed' MAP e.data.amount")
>>> list(execute(query, events))  # doctest: +SKIP
"""

from .ast import Query
from .budget import QueryBudget
from .errors import GdbqlError, GdbqlSemanticError, GdbqlSyntaxError, QueryBudgetExceeded
from .evaluate import evaluate_truthy, execute
from .parser import parse
from .plan import Plan, Pushdown, plan

__all__ = [
    "GdbqlError",
    "GdbqlSemanticError",
    "GdbqlSyntaxError",
    "Plan",
    "Pushdown",
    "Query",
    "QueryBudget",
    "QueryBudgetExceeded",
    "evaluate_truthy",
    "execute",
    "parse",
    "plan",
]
