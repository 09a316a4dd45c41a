"""RFC 8785 (JCS) canonical JSON, the bytes every hash and signature in DecisionTrail covers.

orjson with sorted keys produces exactly the JCS bytes when the value holds no integer outside
the IEEE-754 safe range, no object key with a character at or above U+D800 (JCS sorts keys by
UTF-16 code units, orjson by code points; the two orders only differ there) and only floats
that both print as plain shortest decimals (non-integral, 1e-4 <= |x| < 1e15: outside that
range or for integral values JCS's ECMAScript formatting differs). Such values — nearly every
decision — take that path, about 20 times faster; anything else goes through the reference
``rfc8785`` implementation. A property test checks that both paths agree.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1
_FIRST_SURROGATE = "\ud800"


class CanonicalizationError(ValueError):
    """The value cannot be represented in RFC 8785 JSON."""


def _fast_path_ok(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    if isinstance(value, float):
        magnitude = abs(value)
        return 1e-4 <= magnitude < 1e15 and not value.is_integer()
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or (key and max(key) >= _FIRST_SURROGATE):
                return False
            if not _fast_path_ok(item, depth + 1):
                return False
        return True
    if isinstance(value, list | tuple):
        return all(_fast_path_ok(item, depth + 1) for item in value)
    return False  # anything else: the reference implementation decides


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical encoding of a JSON value."""
    if _fast_path_ok(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise CanonicalizationError(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, rfc8785.IntegerDomainError):
        return "an integer is outside ±(2**53 - 1); send it as a string"
    if isinstance(exc, rfc8785.FloatDomainError):
        return "a number is NaN or infinite"
    if isinstance(exc, RecursionError):
        return "the value is nested too deeply"
    return "the value is not plain JSON (objects with string keys, arrays, strings, numbers)"
