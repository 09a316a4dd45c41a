"""RFC 8785 (JCS) canonical JSON, the bytes every hash and signature in DecisionTrail covers.

The encoding is :mod:`ledgerstore.jcs` (orjson with sorted keys wherever its bytes provably are
the JCS bytes, integral floats such as ``temperature: 1.0`` normalised first; the reference
``rfc8785`` elsewhere); this module keeps the service's own exception and messages.
``ledgerstore.jcs`` is, like ``ledgerstore.merkle``, a pure module (no I/O) the service may import.
"""

from __future__ import annotations

from typing import Any

from ledgerstore import jcs

MAX_SAFE_INTEGER = jcs.MAX_SAFE_INTEGER


class CanonicalizationError(ValueError):
    """The value cannot be represented in RFC 8785 JSON."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical encoding of a JSON value."""
    try:
        return jcs.canonical_json(value)
    except jcs.CanonicalizationError as exc:
        raise CanonicalizationError(_describe(exc)) from None


def _describe(exc: jcs.CanonicalizationError) -> str:
    if exc.reason == "integer":
        return "an integer is outside ±(2**53 - 1); send it as a string"
    if exc.reason == "number":
        return "a number is NaN or infinite"
    if exc.reason == "depth":
        return "the value is nested too deeply"
    return "the value is not plain JSON (objects with string keys, arrays, strings, numbers)"
