"""The GDBQL abstract syntax tree: one frozen dataclass per construct.

Every node carries ``position``, the 0-based offset of the token that introduced it (the
operator, for operator nodes). Positions take no part in equality, so two spellings of one
expression compare equal: GROUP BY relies on that to recognise the grouped expression in
MAP, HAVING and ORDER BY.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal as TypingLiteral
from typing import TypeAlias

Scalar: TypeAlias = str | int | float | bool | None
PathStep: TypeAlias = str | int
CompareOp: TypeAlias = TypingLiteral["==", "!=", "<", "<=", ">", ">="]
ArithmeticOp: TypeAlias = TypingLiteral["+", "-", "*", "/", "%"]
SignOp: TypeAlias = TypingLiteral["-", "+"]
AggregateFunc: TypeAlias = TypingLiteral["COUNT", "SUM", "AVG", "MIN", "MAX"]

EVENT_FIELDS = (
    "source",
    "subject",
    "type",
    "specversion",
    "id",
    "time",
    "datacontenttype",
    "predecessorhash",
    "data",
    "hash",
)
AGGREGATE_FUNCTIONS: dict[str, AggregateFunc] = {
    "COUNT": "COUNT",
    "SUM": "SUM",
    "AVG": "AVG",
    "MIN": "MIN",
    "MAX": "MAX",
}


@dataclass(frozen=True)
class Literal:
    """A string, number, boolean or null written in the query."""

    value: Scalar
    position: int = field(default=0, compare=False)
    # 1 == 1.0 == True in Python; the kind keeps `e.x + 1` and `e.x + true` apart.
    kind: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", type(self.value).__name__)


@dataclass(frozen=True)
class Field:
    """``e.<path>``: an empty path is the whole event, ``("data", "a", 0)`` is e.data.a[0]."""

    path: tuple[PathStep, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Unary:
    """Arithmetic sign: ``-x`` or ``+x``."""

    op: SignOp
    operand: Expr
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    """Logical negation."""

    operand: Expr
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Logical:
    """``a AND b AND …`` / ``a OR b OR …``: a chain of one operator is one node, so long
    chains (``e.id == 'a' OR e.id == 'b' OR …``) add no nesting depth."""

    op: TypingLiteral["AND", "OR"]
    operands: tuple[Expr, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Binary:
    """Arithmetic and concatenation: ``+ - * / %``."""

    op: ArithmeticOp
    left: Expr
    right: Expr
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Compare:
    """``== != < <= > >=`` (``=`` and ``<>`` are parsed as ``==`` and ``!=``)."""

    op: CompareOp
    left: Expr
    right: Expr
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class In:
    """``value IN options``; a parenthesised list is parsed as an ``ArrayLit``."""

    value: Expr
    options: Expr
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Between:
    """``value BETWEEN low AND high``, both bounds inclusive."""

    value: Expr
    low: Expr
    high: Expr
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Under:
    """``value UNDER path``: the subject path itself and its descendants."""

    value: Expr
    path: Expr
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Descendants:
    """``value DESCENDANTS path``: strict descendants of the subject path."""

    value: Expr
    path: Expr
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Aggregate:
    """``COUNT()``, ``COUNT(x)``, ``SUM(x)``, ``AVG(x)``, ``MIN(x)``, ``MAX(x)``."""

    func: AggregateFunc
    arg: Expr | None
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ArrayLit:
    """``[a, b, …]``."""

    items: tuple[Expr, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ObjectLit:
    """``{key: value, …}`` with the keys in written order."""

    entries: tuple[tuple[str, Expr], ...]
    position: int = field(default=0, compare=False)


Expr: TypeAlias = (
    Literal
    | Field
    | Unary
    | Not
    | Logical
    | Binary
    | Compare
    | In
    | Between
    | Under
    | Descendants
    | Aggregate
    | ArrayLit
    | ObjectLit
)


@dataclass(frozen=True)
class Query:
    """One parsed query; ``var`` is the declared range variable (``e`` in ``STREAM e``)."""

    var: str
    where: Expr | None = None
    group_by: Expr | None = None
    having: Expr | None = None
    order_by: tuple[tuple[Expr, bool], ...] = ()  # (expression, descending)
    limit: int | None = None
    map: Expr | None = None

    @property
    def is_aggregate(self) -> bool:
        """True when rows are groups (GROUP BY, or a MAP that uses an aggregate)."""
        return self.group_by is not None or (self.map is not None and contains_aggregate(self.map))

    def expressions(self) -> Iterator[Expr]:
        """Every top-level expression of the query, clause by clause."""
        for expr in (self.where, self.group_by, self.having):
            if expr is not None:
                yield expr
        for expr, _ in self.order_by:
            yield expr
        if self.map is not None:
            yield self.map


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node``."""
    match node:
        case Literal() | Field():
            return ()
        case Unary(operand=operand) | Not(operand=operand):
            return (operand,)
        case Logical(operands=operands):
            return operands
        case Binary(left=left, right=right):
            return (left, right)
        case Compare(left=left, right=right):
            return (left, right)
        case In(value=value, options=options):
            return (value, options)
        case Between(value=value, low=low, high=high):
            return (value, low, high)
        case Under(value=value, path=path) | Descendants(value=value, path=path):
            return (value, path)
        case Aggregate(arg=arg):
            return () if arg is None else (arg,)
        case ArrayLit(items=items):
            return items
        case ObjectLit(entries=entries):
            return tuple(value for _, value in entries)


def walk(node: Expr) -> Iterator[Expr]:
    """``node`` and all its descendants, parents first (iterative, any depth)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def contains_aggregate(node: Expr) -> bool:
    """True when an aggregate function occurs anywhere in ``node``."""
    return any(isinstance(sub, Aggregate) for sub in walk(node))


def is_time_field(node: Expr) -> bool:
    """True for ``e.time``, the field that compares with RFC 3339 strings as instants."""
    return isinstance(node, Field) and node.path == ("time",)
