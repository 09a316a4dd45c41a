"""Tests of ledgerstore.jcs: the RFC 8785 examples, the fast path's thresholds, and a property
test against the reference ``rfc8785`` implementation (same bytes, or both refuse)."""

from __future__ import annotations

import copy
import json
import math
import pickle
import struct
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledgerstore import jcs
from ledgerstore.jcs import CanonicalizationError, canonical_json

SAFE = 2**53 - 1


def reference(value: Any) -> bytes | None:
    """rfc8785's bytes, or None where it refuses the value."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, RecursionError, TypeError, ValueError):
        return None


def ours(value: Any) -> bytes | None:
    try:
        return canonical_json(value)
    except CanonicalizationError:
        return None


@pytest.fixture
def no_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a value leaves the fast path."""

    def refuse(value: Any) -> bytes:
        raise AssertionError("the value took the slow path")

    monkeypatch.setattr(jcs, "_reference", refuse)


# --- RFC 8785 and its reference implementation's test data ----------------------------------

# Appendix B: IEEE-754 binary64 (hex) → the JCS spelling.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_appendix_b_numbers(bits: str, expected: str) -> None:
    number = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonical_json(number) == expected.encode()
    assert canonical_json([number]) == f"[{expected}]".encode()
    assert canonical_json({"n": number}) == f'{{"n":{expected}}}'.encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_appendix_b_nan_and_infinity_are_refused(bits: str) -> None:
    number = struct.unpack(">d", bytes.fromhex(bits))[0]
    for value in (number, [number], {"n": number}):
        with pytest.raises(CanonicalizationError, match="NaN or infinite") as caught:
            canonical_json(value)
        assert caught.value.reason == "number"


# Section 3.2.2 and the reference implementation's testdata (input JSON → canonical text).
EXAMPLES = [
    (
        r"""{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
             "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
             "literals": [null, true, false]}""",
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    ),
    (  # §3.2.3: keys sorted by UTF-16 code units (the emoji's surrogates sort before U+FB33)
        r"""{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet",
             "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
             "\u00f6": "Latin Small Letter O With Diaeresis"}""",
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet"}',
    ),
    (
        r"""{"\u20ac": "Euro Sign", "1": "One", "\u0080": "Control\u007f",
             "\ud83d\ude02": "Smiley", "\u00f6": "Latin Small Letter O With Diaeresis",
             "\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"}""",
        '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
        '"ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","\U0001f602":"Smiley",'
        '"\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    ),
    (
        r"""{"1": {"f": {"f": "hi", "F": 5}, "\n": 56.0}, "10": {}, "": "empty", "a": {},
             "111": [{}], "A": {}}""",
        '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}',
    ),
    ('[56, {"d": true, "10": null, "1": []}]', '[56,{"1":[],"10":null,"d":true}]'),
    (r'{"Unnormalized Unicode": "\u1e0d\u0307"}', '{"Unnormalized Unicode":"\u1e0d\u0307"}'),
    (
        '{"peach": "This sorting order", "péché": "is wrong according to French",'
        ' "pêche": "but canonicalization MUST", "sin": "ignore locale"}',
        '{"peach":"This sorting order","péché":"is wrong according to French",'
        '"pêche":"but canonicalization MUST","sin":"ignore locale"}',
    ),
]


@pytest.mark.parametrize(("source", "expected"), EXAMPLES)
def test_rfc8785_examples(source: str, expected: str) -> None:
    value = json.loads(source)
    assert canonical_json(value) == expected.encode()
    assert rfc8785.dumps(value) == expected.encode()


# --- the fast path --------------------------------------------------------------------------


def test_a_typical_decision_takes_the_fast_path(no_reference: None) -> None:
    decision: dict[str, Any] = {
        "agent": "support-bot",
        "action": "refund",
        "confidence": 0.93,
        "model": {"name": "gpt-4o", "parameters": {"temperature": 1.0, "top_p": 0.95}},
        "usage": {"input_tokens": 1200, "output_tokens": 0, "cost": 0.0042},
        "input": [{"role": "user", "content": "Refund order 42? Café ☕ 😀"}],
        "metadata": {"scores": [0.0, -0.0, 1.0, 2.5, 1e-5, 12345.678], "ok": True, "x": None},
        "tags": ("eu", "vip"),
    }
    expected = rfc8785.dumps(decision)
    assert canonical_json(decision) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, b"1"),
        (-0.0, b"0"),
        (0.0, b"0"),
        (-3.0, b"-3"),
        (2.0**53 - 1, b"9007199254740991"),
        (-(2.0**53) + 1, b"-9007199254740991"),
        (1e-5, b"0.00001"),
        (-1e-5, b"-0.00001"),
        (math.nextafter(1e-5, 1.0), b"0.000010000000000000003"),
        (0.30000000000000004, b"0.30000000000000004"),
        (2.0**52 - 0.5, b"4503599627370495.5"),
        (SAFE, b"9007199254740991"),
        (-SAFE, b"-9007199254740991"),
        ({"b": [1.0, {"c": -0.0}], "a": 2.0}, b'{"a":2,"b":[1,{"c":0}]}'),
        ((1.0, 2), b"[1,2]"),
        ({"é": 1, "z": 2, "\ud7ff": 3}, '{"z":2,"é":1,"\ud7ff":3}'.encode()),
        ("\u2028\x7f</script>", '"\u2028\x7f</script>"'.encode()),
        ('\x00\x08\t\n\x0b\x0c\r\x1f"\\', b'"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\\"\\\\"'),
    ],
)
def test_values_on_the_fast_path(value: Any, expected: bytes, no_reference: None) -> None:
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.0**53, b"9007199254740992"),
        (2.0**60, b"1152921504606847000"),
        (1e20, b"100000000000000000000"),
        (1e21, b"1e+21"),
        (-1e21, b"-1e+21"),
        (math.nextafter(1e-5, 0.0), b"0.000009999999999999999"),
        (1e-6, b"0.000001"),
        (1e-7, b"1e-7"),
        (5e-324, b"5e-324"),
        ({"\U0001f600": 1, "\ue000": 2}, '{"\U0001f600":1,"\ue000":2}'.encode()),
        ({"a": [[1.5e-9]]}, b'{"a":[[1.5e-9]]}'),
    ],
)
def test_values_where_orjson_differs_use_the_reference(value: Any, expected: bytes) -> None:
    with pytest.raises(jcs._Slow):
        jcs._prepare(value, 0)
    assert canonical_json(value) == expected


def test_normalising_leaves_the_value_alone() -> None:
    value = {"a": [1.0, {"b": -0.0}], "c": (2.0,), "d": {"e": "x"}}
    before = copy.deepcopy(value)
    assert canonical_json(value) == b'{"a":[1,{"b":0}],"c":[2],"d":{"e":"x"}}'
    assert repr(value) == repr(before)


def test_unchanged_containers_are_not_copied() -> None:
    inner = {"e": "x", "f": [1, 2.5]}
    value = {"a": 1.0, "d": inner}
    prepared = jcs._prepare(value, 0)
    assert prepared is not value and prepared["d"] is inner
    assert jcs._prepare(inner, 0) is inner


def test_the_import_time_probe_accepts_this_orjson() -> None:
    assert jcs._PLAIN_FROM == 1e-5, f"orjson {orjson.__version__} formats floats differently"


def test_deep_values() -> None:
    value: Any = "leaf"
    for _ in range(jcs.MAX_FAST_DEPTH + 10):  # past the fast path, within the reference's
        value = [value, {"k": 1.0}]
    assert canonical_json(value) == rfc8785.dumps(value)
    for _ in range(5000):
        value = [value]
    with pytest.raises(CanonicalizationError, match="nested too deeply"):
        canonical_json(value)


class Text(str):
    pass


class Number(float):
    pass


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (2**53, "integer"),
        ([-(2**53)], "integer"),
        ({"a": 10**30}, "integer"),
        (math.nan, "number"),
        ({"a": [math.inf]}, "number"),
        ({1: "x"}, "type"),
        ({"a": object()}, "type"),
        ({"a": {1, 2}}, "type"),
        (b"bytes", "type"),
        ("\ud800", "unicode"),
        ({"k\udfff": 1}, "unicode"),
        (["ok", "lone \udc00"], "unicode"),
    ],
)
def test_values_outside_json_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(CanonicalizationError) as caught:
        canonical_json(value)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_errors_pickle_with_their_reason() -> None:
    with pytest.raises(CanonicalizationError) as caught:
        canonical_json({"a": 2**60})
    copied = pickle.loads(pickle.dumps(caught.value))
    assert (type(copied), str(copied), copied.reason) == (
        CanonicalizationError,
        str(caught.value),
        "integer",
    )


def test_error_messages_never_quote_the_value() -> None:
    for value in ({"secret-key": 2**60}, {"a": "secret\ud800"}, {"secret": object()}):
        with pytest.raises(CanonicalizationError) as caught:
            canonical_json(value)
        assert "secret" not in str(caught.value)
        assert str(2**60) not in str(caught.value)


def test_subclasses_take_the_reference_path() -> None:
    value = {"a": Text("x"), "b": Number(1.0), "c": [Number(0.5)]}
    with pytest.raises(jcs._Slow):
        jcs._prepare(value, 0)
    assert canonical_json(value) == b'{"a":"x","b":1,"c":[0.5]}'
    assert canonical_json({Text("k"): 1}) == b'{"k":1}'


# --- property: the same bytes as rfc8785, or both refuse ------------------------------------

BOUNDARY_FLOATS = [
    0.0, -0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e15, 1e16, 1e20, 1e21, 1e22, 2.0**52, 2.0**53,
    2.0**53 - 1, 2.0**53 + 2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
]  # fmt: skip
BOUNDARY_FLOATS += [
    math.nextafter(x, direction) for x in BOUNDARY_FLOATS for direction in (0, 1e300)
]
BOUNDARY_FLOATS += [-x for x in BOUNDARY_FLOATS]

characters = (
    st.characters(max_codepoint=0x7F)
    | st.characters()
    | st.characters(min_codepoint=0xD700, max_codepoint=0xFFFF)  # around and above U+D800
    | st.characters(min_codepoint=0x10000)  # astral: UTF-16 surrogate pairs
)
text = st.text(characters, max_size=8)
floats = (
    st.floats()  # includes NaN, infinities, -0.0, subnormals, huge
    | st.floats(min_value=-1e-3, max_value=1e-3)  # around the exponent-form thresholds
    | st.integers(-(2**60), 2**60).map(float)  # integral, below and above 2**53
    | st.integers(-(2**54), 2**54).map(float)
    | st.integers(-330, 310).map(lambda e: 10.0**e if e < 309 else math.inf)
    | st.sampled_from(BOUNDARY_FLOATS)
)
integers = (
    st.integers(-(2**53) - 3, 2**53 + 3)
    | st.integers(2**53 - 3, 2**53 + 3)
    | st.integers(-(2**53) - 3, -(2**53) + 3)
    | st.integers(-1000, 1000)
    | st.integers()
)
json_scalars = st.none() | st.booleans() | integers | floats | text
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(text, children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=3000, deadline=None)
@given(json_values)
@example({"\U0001f600": 1, "\ue000": 2.0})
@example([1.0, -0.0, 2.0**53, 1e21, 1e-7, 1e-6, 1e-5, math.nan])
@example({"a": {"b": [{"c": 1.0}]}, "d": "\ud800"})
def test_same_bytes_as_rfc8785(value: Any) -> None:
    before = repr(value)
    assert ours(value) == reference(value)
    assert repr(value) == before  # normalising never touches the caller's value


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(st.characters(categories=["Cs"]) | characters), st.integers(0, 9)))
def test_keys_with_lone_surrogates(value: dict[str, int]) -> None:
    assert ours(value) == reference(value)
