"""Payload filters of the query protocol, compiled to predicates (pure; no I/O).

A condition is ``{"field", "op", "value"}``: ``field`` is a dotted path into the payload,
``op`` one of ``eq ne gt gte lt lte in contains`` (default ``eq``); a list of conditions is
their AND. A plain ``{key: value, …}`` object (the legacy filter) is equality on every key.
Equality is JSON equality: ``true`` never equals ``1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sapixdb.exceptions import SapixError

__all__ = ["MISSING", "OPS", "Predicate", "compile_filter", "get_path"]

OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"})
MISSING: Any = object()
Predicate = Callable[[Any], bool]


def _invalid(message: str) -> SapixError:
    return SapixError(message, 400, "INVALID_FILTER")


def _field(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 256 or "\x00" in value:
        raise _invalid("a filter field is a non-empty string of at most 256 characters")
    return value


def get_path(payload: Any, path: str) -> Any:
    """``payload[a][b]`` for ``"a.b"``; ``MISSING`` where any step is absent."""
    value = payload
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _same(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if actual is MISSING:
        return op == "ne"
    if op == "eq":
        return _same(actual, expected)
    if op == "ne":
        return not _same(actual, expected)
    if op == "in":
        return isinstance(expected, list) and any(_same(actual, v) for v in expected)
    if op == "contains":
        if isinstance(actual, str) and isinstance(expected, str):
            return expected in actual
        return isinstance(actual, list) and any(_same(v, expected) for v in actual)
    numeric = (int, float)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return False
    comparable = (isinstance(actual, numeric) and isinstance(expected, numeric)) or (
        isinstance(actual, str) and isinstance(expected, str)
    )
    if not comparable:
        return False
    if op == "gt":
        return bool(actual > expected)
    if op == "gte":
        return bool(actual >= expected)
    if op == "lt":
        return bool(actual < expected)
    return bool(actual <= expected)


def compile_filter(spec: Any) -> Predicate | None:
    """A predicate over payloads from a wire filter; a list means AND of every condition.

    A condition is ``{"field", "op", "value"}`` (``op`` defaults to ``eq``); a plain dict
    without ``field`` is the legacy multi-key equality filter.
    """
    if spec is None:
        return None
    conditions: list[tuple[str, str, Any]] = []
    items = spec if isinstance(spec, list) else [spec]
    for item in items:
        if not isinstance(item, dict):
            raise _invalid("a filter is an object or a list of objects")
        if "field" not in item:
            conditions.extend((_field(k), "eq", v) for k, v in item.items())
            continue
        field = _field(item["field"])
        op = item.get("op", "eq")
        if op not in OPS:
            raise _invalid(f"unsupported filter op; use one of {sorted(OPS)}")
        if "value" not in item:
            raise _invalid("a filter condition needs a value")
        conditions.append((field, op, item["value"]))
    if not conditions:
        return None
    tests = [_condition(field, op, value) for field, op, value in conditions]

    def matches(payload: Any) -> bool:
        return all(test(payload) for test in tests)

    return matches


def _condition(field: str, op: str, value: Any) -> Predicate:
    """One condition as a predicate over payloads; ``in`` over a list is a set look-up."""
    if op == "in" and isinstance(value, list):
        return _membership(field, value)
    return lambda payload: _compare(op, get_path(payload, field), value)


def _scalar_key(value: Any) -> tuple[str, Any] | None:
    """A hashable key that two scalars share exactly when :func:`_same` says they are equal
    (``true`` is not ``1``; ``1`` is ``1.0``); None for arrays and objects."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return None


def _membership(field: str, options: list[Any]) -> Predicate:
    """``in``: one hash look-up per record for scalars (a scan of a long list per record is
    what a hostile filter would exploit); arrays and objects are compared one by one."""
    keys: set[tuple[str, Any]] = set()
    containers: list[Any] = []
    for option in options:
        key = _scalar_key(option)
        if key is None:
            containers.append(option)
        else:
            keys.add(key)

    def member(payload: Any) -> bool:
        actual = get_path(payload, field)
        if actual is MISSING:
            return False
        key = _scalar_key(actual)
        if key is not None:
            return key in keys
        return any(_same(actual, option) for option in containers)

    return member
