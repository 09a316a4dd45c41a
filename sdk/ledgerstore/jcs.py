"""RFC 8785 (JCS) canonical JSON: the bytes a hash or signature over a JSON value covers.

A pure module (no I/O), like :mod:`ledgerstore.merkle`, so that the DecisionTrail service can
import it too. :func:`canonical_json` returns exactly the bytes of the reference ``rfc8785``
implementation, or raises :class:`CanonicalizationError`. It is several times faster on
typical values (a 1 KB decision: ≈ 9 µs against ≈ 58 µs) because it lets orjson (with
sorted keys) encode any value whose orjson encoding is provably the JCS encoding, after one
cheap pass over the value:

- ``None``, ``bool`` and ``str``: both write the same bytes (the same short escapes, lowercase
  ``\\u00xx`` for the other control characters, everything else as UTF-8). A string that is
  not valid Unicode makes orjson raise, and the reference then reports it.
- ``int`` within ±(2**53 − 1): both print the decimal digits. Larger integers are not
  I-JSON numbers; the reference refuses them.
- ``float``: JCS prints a number like ECMAScript's ``Number.prototype.toString``: the
  shortest round-trip digits, laid out as an integer for integral values below 1e21, as a
  plain decimal for 1e-6 <= |x| < 1e21 and in exponent form (``1e-7``, ``1e+21``) outside.
  orjson writes the same shortest digits but uses ``.0`` for integral values, and exponent
  form below 1e-5 and from 1e16 on (spelled ``1e16`` before orjson 3.11.7). So:

  - an integral float with |x| < 2**53 is replaced by the equal ``int`` (1.0 → ``1``,
    -0.0 → ``0``): every integer below 2**53 is a double, so the shortest digits of such a
    float are its integer digits. Larger integral floats (2.0**60 → ``1152921504606847000``,
    1e21 → ``1e+21``) are left to the reference;
  - a non-integral float with |x| >= 1e-5 is encoded by orjson: both print it as a plain
    decimal (every non-integral double is below 2**52, far under both upper thresholds);
  - anything else (|x| < 1e-5, NaN, infinities, which orjson would write as ``null``) is left
    to the reference. An import-time check of orjson's output at these thresholds turns the
    fast path off for non-integral floats if an orjson release ever formats them differently.

- objects: JCS sorts keys by UTF-16 code units, orjson by code points; the two orders agree
  unless a key holds a character at or above U+D800, so such keys, and non-string keys, are
  left to the reference. Only exact ``dict``, ``list`` and ``tuple`` containers (and exact
  scalar types) are walked; subclasses and anything else are left to the reference too, as
  are values nested deeper than :data:`MAX_FAST_DEPTH`.

The pass checks and, only when a value holds an integral float, copies the containers on the
path to it. A property test checks the result against ``rfc8785`` for arbitrary values.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal

import orjson
import rfc8785

__all__ = ["MAX_SAFE_INTEGER", "CanonicalizationError", "Reason", "canonical_json"]

Reason = Literal["integer", "number", "depth", "unicode", "type"]

MAX_SAFE_INTEGER: Final = 2**53 - 1
MAX_FAST_DEPTH: Final = 128  # below orjson's own limit of 255; deeper goes to the reference

_INTEGRAL_LIMIT: Final = 2.0**53  # integral floats strictly below this become ints
_PLAIN_BELOW: Final = 1e16  # orjson's plain decimals end here (and this excludes inf)
_FIRST_SURROGATE: Final = "\ud800"
_SORT_KEYS: Final = orjson.OPT_SORT_KEYS
_NOT_JSON: Final = (
    "the value is not plain JSON (objects with string keys, arrays, strings, numbers)"
)


def _orjson_formats_floats_like_jcs() -> bool:
    """Whether this orjson writes non-integral floats from 1e-5 on exactly as JCS does.

    Probes the thresholds the fast path relies on (and a few ordinary values), so that an
    orjson release that changes its float layout cannot silently change a hash.
    """
    probes = [1e-5, math.nextafter(1e-5, 1.0), 1.5e-5, 0.000123, 0.1, 0.30000000000000004]
    probes += [1.5, 123.456, 1e15 + 0.5, 1234567890123456.8, 2.0**52 - 0.5, 5e-5, 9.5e-5]
    probes += [-x for x in probes]
    return all(orjson.dumps(x) == rfc8785.dumps(x) for x in probes)


# Non-integral floats from here on are plain decimals in both (NaN fails the comparison).
_PLAIN_FROM: Final = 1e-5 if _orjson_formats_floats_like_jcs() else math.inf


class CanonicalizationError(ValueError):
    """The value has no RFC 8785 encoding.

    The message never quotes the value (it may be personal data). ``reason`` says why:
    ``"integer"`` (outside ±(2**53 − 1)), ``"number"`` (NaN or infinite), ``"depth"``
    (nested too deeply), ``"unicode"`` (a string that is not valid Unicode) or ``"type"``
    (not plain JSON: a non-string key or a value that is not a JSON type).
    """

    def __init__(self, message: str, reason: Reason = "type") -> None:
        super().__init__(message)
        self.reason: Reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.reason)


class _Slow(Exception):
    """Internal: the value needs the reference encoder. Raised as a class, so that each
    raise gets a fresh instance (a reused one would keep every traceback, and its frames)."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical encoding of a JSON value."""
    try:
        prepared = _prepare(value, 0)
    except _Slow:
        return _reference(value)
    try:
        return orjson.dumps(prepared, option=_SORT_KEYS)
    except orjson.JSONEncodeError:  # e.g. a lone surrogate in a string
        return _reference(value)


def _prepare(value: Any, depth: int) -> Any:
    """``value`` if orjson encodes it as JCS, else an equal copy that it does; or raise _Slow.

    Scalars inside containers are checked inline (a call per leaf would double the cost).
    """
    kind = type(value)
    if kind is dict:
        if depth >= MAX_FAST_DEPTH:
            raise _Slow
        copy: dict[str, Any] | None = None
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or max(key) < _FIRST_SURROGATE):
                raise _Slow
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int:
                if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    raise _Slow
                continue
            if kind is float:
                if not item.is_integer():
                    if not _PLAIN_FROM <= abs(item) < _PLAIN_BELOW:
                        raise _Slow
                    continue
                new: Any = _integral(item)
            else:
                new = _prepare(item, depth + 1)
                if new is item:
                    continue
            if copy is None:
                copy = dict(value)
            copy[key] = new
        return value if copy is None else copy
    if kind is list or kind is tuple:
        if depth >= MAX_FAST_DEPTH:
            raise _Slow
        changed: list[Any] | None = None
        for index, item in enumerate(value):
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int:
                if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    raise _Slow
                continue
            if kind is float:
                if not item.is_integer():
                    if not _PLAIN_FROM <= abs(item) < _PLAIN_BELOW:
                        raise _Slow
                    continue
                new = _integral(item)
            else:
                new = _prepare(item, depth + 1)
                if new is item:
                    continue
            if changed is None:
                changed = list(value)
            changed[index] = new
        return value if changed is None else changed
    # A scalar at the top (inside containers scalars are handled above).
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise _Slow
        return value
    if kind is float:
        if value.is_integer():
            return _integral(value)
        if _PLAIN_FROM <= abs(value) < _PLAIN_BELOW:
            return value
    raise _Slow


def _integral(number: float) -> int:
    """The int JCS prints an integral float as, when it prints one below 2**53."""
    if -_INTEGRAL_LIMIT < number < _INTEGRAL_LIMIT:
        return int(number)
    raise _Slow


def _reference(value: Any) -> bytes:
    try:
        encoded: bytes = rfc8785.dumps(value)
    except RecursionError:
        raise CanonicalizationError("the value is nested too deeply", "depth") from None
    except rfc8785.IntegerDomainError:
        raise CanonicalizationError("an integer is outside ±(2**53 - 1)", "integer") from None
    except rfc8785.FloatDomainError:
        raise CanonicalizationError("a number is NaN or infinite", "number") from None
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        # The library's messages can quote the value: never pass them on.
        if isinstance(exc, UnicodeError) or isinstance(exc.__cause__, UnicodeError):
            raise CanonicalizationError("a string is not valid Unicode", "unicode") from None
        raise CanonicalizationError(_NOT_JSON, "type") from None
    return encoded
