"""Turn expressions into Python closures, once per query, so rows are evaluated fast.

``EventCompiler`` compiles expressions that read one event (WHERE, GROUP BY, the arguments
of aggregates, and MAP/ORDER BY of plain queries). ``GroupCompiler`` compiles the MAP,
HAVING and ORDER BY of aggregate queries: they read a ``Group`` (the grouped value and the
group's accumulators) instead of an event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .aggregates import Accumulator, new_accumulator
from .ast import (
    Aggregate,
    ArrayLit,
    Between,
    Binary,
    Compare,
    Descendants,
    Expr,
    Field,
    In,
    Literal,
    Logical,
    Not,
    ObjectLit,
    PathStep,
    Unary,
    Under,
    is_time_field,
)
from .values import (
    ARITHMETIC,
    COMPARATORS,
    Comparator,
    as_instants,
    equal,
    is_descendant,
    is_member,
    is_truthy,
    is_under,
    negate,
    plus,
    sort_key,
)

Compiled = Callable[[Any], Any]


@dataclass(slots=True)
class Group:
    """One group of an aggregate query: its GROUP BY value and one accumulator per call."""

    key: Any
    accumulators: list[Accumulator]


def read_path(value: Any, path: Sequence[PathStep]) -> Any:
    """Follow ``path`` into nested objects/arrays; anything missing gives null."""
    for step in path:
        if isinstance(step, str):
            value = value.get(step) if isinstance(value, Mapping) else None
        elif isinstance(value, list | tuple) and 0 <= step < len(value):
            value = value[step]
        else:
            return None
    return value


class EventCompiler:
    """Compiles expressions evaluated against one event."""

    def compile(self, node: Expr) -> Compiled:
        match node:
            case Literal(value=value):
                return lambda _: value
            case Field():
                return self._field(node)
            case Aggregate():
                return self._aggregate(node)
            case Unary() | Not() | Logical():
                return self._logic_or_sign(node)
            case Binary(op=op, left=left, right=right):
                return self._pair(ARITHMETIC[op], left, right)
            case Compare(op=op, left=left, right=right):
                compare = _time_aware(COMPARATORS[op], left, right)
                return self._pair(compare, left, right)
            case ArrayLit() | ObjectLit():
                return self._container(node)
            case _:
                return self._predicate(node)

    def _pair(self, operation: Callable[[Any, Any], Any], left: Expr, right: Expr) -> Compiled:
        left_fn, right_fn = self.compile(left), self.compile(right)
        return lambda row: operation(left_fn(row), right_fn(row))

    def _logic_or_sign(self, node: Unary | Not | Logical) -> Compiled:
        if isinstance(node, Unary):
            operand = self.compile(node.operand)
            sign = negate if node.op == "-" else plus
            return lambda row: sign(operand(row))
        if isinstance(node, Not):
            inner = self.compile(node.operand)
            return lambda row: not is_truthy(inner(row))
        operands = [self.compile(operand) for operand in node.operands]
        if node.op == "AND":
            return lambda row: all(is_truthy(operand(row)) for operand in operands)
        return lambda row: any(is_truthy(operand(row)) for operand in operands)

    def _container(self, node: ArrayLit | ObjectLit) -> Compiled:
        if isinstance(node, ArrayLit):
            items = [self.compile(item) for item in node.items]
            return lambda row: [item(row) for item in items]
        entries = [(key, self.compile(value)) for key, value in node.entries]
        return lambda row: {key: value(row) for key, value in entries}

    def _predicate(self, node: Expr) -> Compiled:
        match node:
            case In(value=value, options=options):
                same = _time_aware(equal, value, *_option_nodes(options))
                if same is equal:
                    constants = _constant(options)
                    if isinstance(constants, list):
                        return self._set_member(value, constants)
                return self._pair(lambda left, right: is_member(left, right, same), value, options)
            case Between():
                return self._between(node)
            case Under(value=value, path=path):
                return self._pair(is_under, value, path)
            case Descendants(value=value, path=path):
                return self._pair(is_descendant, value, path)
        raise AssertionError(f"unknown expression node {node!r}")

    def _set_member(self, value: Expr, options: list[Any]) -> Compiled:
        """``value IN [constants]`` as one hash look-up per row, not a scan of the list.

        ``equal`` is "same ``sort_key``", and sort keys are hashable: a set of the options'
        keys answers exactly what scanning them would.
        """
        keys = frozenset(sort_key(option) for option in options)
        read = self.compile(value)
        return lambda row: sort_key(read(row)) in keys

    def _between(self, node: Between) -> Compiled:
        nodes = (node.value, node.low, node.high)
        at_least = _time_aware(COMPARATORS[">="], *nodes)
        at_most = _time_aware(COMPARATORS["<="], *nodes)
        value, low, high = (self.compile(part) for part in nodes)

        def between(row: Any) -> bool:
            current = value(row)
            return at_least(current, low(row)) and at_most(current, high(row))

        return between

    def _field(self, node: Field) -> Compiled:
        path = node.path
        if not path:
            return lambda event: event
        head, rest = path[0], path[1:]
        if not rest:
            return lambda event: event.get(head)
        return lambda event: read_path(event.get(head), rest)

    def _aggregate(self, node: Aggregate) -> Compiled:
        raise AssertionError("validation keeps aggregates out of per-event expressions")


class GroupCompiler(EventCompiler):
    """Compiles expressions evaluated against a ``Group``; collects the aggregate calls."""

    def __init__(self, group_by: Expr | None) -> None:
        self._group_by = group_by
        self.aggregates: list[Aggregate] = []

    def compile(self, node: Expr) -> Compiled:
        if self._group_by is not None and node == self._group_by:
            return lambda group: group.key
        return super().compile(node)

    def _field(self, node: Field) -> Compiled:
        raise AssertionError("validation keeps fields outside aggregates out of group rows")

    def _aggregate(self, node: Aggregate) -> Compiled:
        if node not in self.aggregates:
            self.aggregates.append(node)
        index = self.aggregates.index(node)
        return lambda group: group.accumulators[index].result()

    def new_group(self, key: Any) -> Group:
        """A group with fresh accumulators for every aggregate compiled so far."""
        accumulators = [
            new_accumulator(call.func, has_arg=call.arg is not None) for call in self.aggregates
        ]
        return Group(key, accumulators)


_NOT_CONSTANT: Any = object()


def _constant(node: Expr) -> Any:
    """The value of an expression that reads nothing (literals, signs, arrays, objects of
    them), or ``_NOT_CONSTANT``."""
    match node:
        case Literal(value=value):
            return value
        case Unary(op=op, operand=operand):
            inner = _constant(operand)
            if inner is _NOT_CONSTANT:
                return inner
            return negate(inner) if op == "-" else plus(inner)
        case ArrayLit(items=items):
            values = [_constant(item) for item in items]
            return _NOT_CONSTANT if any(v is _NOT_CONSTANT for v in values) else values
        case ObjectLit(entries=entries):
            pairs = [(key, _constant(item)) for key, item in entries]
            if any(v is _NOT_CONSTANT for _, v in pairs):
                return _NOT_CONSTANT
            return dict(pairs)
    return _NOT_CONSTANT


def _option_nodes(options: Expr) -> tuple[Expr, ...]:
    return options.items if isinstance(options, ArrayLit) else (options,)


def _time_aware(compare: Comparator, *operands: Expr) -> Comparator:
    """Compare as instants when any operand is ``e.time`` (see ``evaluate``'s docstring)."""
    return as_instants(compare) if any(map(is_time_field, operands)) else compare
