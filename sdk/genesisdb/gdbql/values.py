"""What GDBQL operators do to values (the rules are listed in ``evaluate``'s docstring).

Values are JSON-shaped: None, bool, int, float, str, list/tuple, and mappings. No function
here raises for any such input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from .timestamps import parse_instant

Comparator = Callable[[Any, Any], bool]

# Type ranks of the total order used by ORDER BY, MIN/MAX and grouping.
_NULL, _BOOLEAN, _NUMBER, _STRING, _ARRAY, _OBJECT, _OTHER = range(7)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_truthy(value: object) -> bool:
    """null, false, 0, 0.0, "", [] and {} are false; everything else is true."""
    if value is True:
        return True
    if value is None or value is False:
        return False
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value) > 0
    return True


def sort_key(value: object) -> tuple[Any, ...]:
    """A key giving every value a place in one total order; equal keys mean equal values.

    null < booleans < numbers < strings < arrays < objects; numbers by value (NaN after
    all other numbers), strings by code point, arrays element by element, objects by their
    sorted (key, value) pairs.
    """
    if value is None:
        return (_NULL,)
    if isinstance(value, bool):
        return (_BOOLEAN, int(value))
    if isinstance(value, int | float):
        return (_NUMBER, 1) if value != value else (_NUMBER, 0, value)
    if isinstance(value, str):
        return (_STRING, value)
    if isinstance(value, list | tuple):
        return (_ARRAY, tuple(sort_key(item) for item in value))
    if isinstance(value, Mapping):
        items = sorted((str(key), sort_key(item)) for key, item in value.items())
        return (_OBJECT, tuple(items))
    return (_OTHER, type(value).__name__, repr(value))


def equal(left: object, right: object) -> bool:
    """Structural equality: 1 == 1.0, true != 1, null == null, arrays/objects deeply."""
    if type(left) is str and type(right) is str:
        return left == right
    return sort_key(left) == sort_key(right)


def _ordered(compare: Comparator) -> Comparator:
    """Order two numbers or two strings with ``compare``; any other pair is false."""

    def ordered(left: Any, right: Any) -> bool:
        if (is_number(left) and is_number(right)) or (
            isinstance(left, str) and isinstance(right, str)
        ):
            return bool(compare(left, right))
        return False

    return ordered


COMPARATORS: dict[str, Comparator] = {
    "==": equal,
    "!=": lambda left, right: not equal(left, right),
    "<": _ordered(lambda left, right: left < right),
    "<=": _ordered(lambda left, right: left <= right),
    ">": _ordered(lambda left, right: left > right),
    ">=": _ordered(lambda left, right: left >= right),
}


def as_instants(compare: Comparator) -> Comparator:
    """``compare``, but two strings that both parse as RFC 3339 are compared as instants."""

    def compare_instants(left: Any, right: Any) -> bool:
        if isinstance(left, str) and isinstance(right, str):
            left_instant, right_instant = parse_instant(left), parse_instant(right)
            if left_instant is not None and right_instant is not None:
                return compare(left_instant, right_instant)
        return compare(left, right)

    return compare_instants


def is_member(value: object, options: object, same: Comparator = equal) -> bool:
    """``value IN options``: options must be an array; membership by ``same``."""
    if not isinstance(options, list | tuple):
        return False
    return any(same(value, option) for option in options)


def is_under(subject: object, path: object) -> bool:
    """Segment-aware: ``/a`` is under ``/a`` and ``/a/b``'s ancestor, not ``/ab``'s."""
    if not (isinstance(subject, str) and isinstance(path, str)):
        return False
    prefix = path.rstrip("/")
    return subject == (prefix or "/") or subject.startswith(prefix + "/")


def is_descendant(subject: object, path: object) -> bool:
    """Strictly below ``path``: ``/a/b`` is a descendant of ``/a``; ``/a`` is not."""
    if not (isinstance(subject, str) and isinstance(path, str)):
        return False
    prefix = path.rstrip("/")
    return subject != (prefix or "/") and subject.startswith(prefix + "/")


#: Integers a result may hold: the signed 64-bit range (what JSON encoders and SQL take).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def _finite(result: int | float) -> int | float | None:
    """A result, or null for a non-finite float or an integer beyond 64 bits (overflow)."""
    if isinstance(result, float) and not math.isfinite(result):
        return None
    if isinstance(result, int) and not INT_MIN <= result <= INT_MAX:
        return None
    return result


def _numeric(operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Apply ``operation`` to two numbers; anything else, or an overflow, gives null."""

    def apply(left: Any, right: Any) -> Any:
        if not (is_number(left) and is_number(right)):
            return None
        try:
            return _finite(operation(left, right))
        except (ArithmeticError, ValueError):
            return None

    return apply


def as_text(value: object) -> str:
    """How a non-string operand of a concatenation is spelt: its JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str) or isinstance(right, str):
        if left is None or right is None:
            return None
        return as_text(left) + as_text(right)
    return add_numbers(left, right)


def _divide(left: Any, right: Any) -> Any:
    if right == 0:
        return None
    if isinstance(left, int) and isinstance(right, int) and left % right == 0:
        return left // right
    return left / right


def _remainder(left: Any, right: Any) -> Any:
    """The remainder takes the dividend's sign (as in C, SQL and JavaScript)."""
    if right == 0:
        return None
    if isinstance(left, int) and isinstance(right, int):
        magnitude = abs(left) % abs(right)
        return -magnitude if left < 0 else magnitude
    return math.fmod(left, right)


add_numbers = _numeric(lambda left, right: left + right)
divide = _numeric(_divide)

ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": _numeric(lambda left, right: left - right),
    "*": _numeric(lambda left, right: left * right),
    "/": divide,
    "%": _numeric(_remainder),
}


def negate(value: Any) -> Any:
    return _finite(-value) if is_number(value) else None


def plus(value: Any) -> Any:
    return value if is_number(value) else None
