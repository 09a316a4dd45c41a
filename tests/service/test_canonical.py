from __future__ import annotations

import math
import re
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from decisiontrail.canonical import CanonicalizationError, canonical_json
from ledgerstore import jcs

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-4, max_value=1e15, allow_nan=False)
    | st.integers(-(2**55), 2**55).map(float)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None)
@given(json_values)
def test_both_paths_give_the_rfc8785_bytes(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("temperature", [0.2, 1.0, 0.0])
def test_typical_decisions_take_the_fast_path(
    temperature: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    decision: dict[str, Any] = {
        "agent": "support-bot",
        "confidence": 0.93,
        "model": {"name": "gpt-4o", "parameters": {"temperature": temperature, "top_p": 0.95}},
        "usage": {"input_tokens": 1200, "cost": 0.0042},
        "input": "Refund order 42? Café ☕",
    }
    expected = rfc8785.dumps(decision)

    def refuse(value: Any) -> bytes:
        raise AssertionError("the decision left the fast path")

    monkeypatch.setattr(jcs, "_reference", refuse)
    assert canonical_json(decision) == expected


@pytest.mark.parametrize(
    "value", [1e-7, 1e21, 2.0**60, 123456789012345680.0, {"\U0001f600": 1, "\ue000": 2}]
)
def test_values_where_the_formats_differ_use_the_reference(value: Any) -> None:
    with pytest.raises(jcs._Slow):
        jcs._prepare(value, 0)
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**53, "an integer is outside ±(2**53 - 1); send it as a string"),
        ({"a": [-(2**60)]}, "an integer is outside ±(2**53 - 1); send it as a string"),
        (math.nan, "a number is NaN or infinite"),
        ([math.inf], "a number is NaN or infinite"),
        ({1: "x"}, "the value is not plain JSON"),
        ({"a": object()}, "the value is not plain JSON"),
        ("\ud800", "the value is not plain JSON"),
    ],
)
def test_values_outside_json_are_refused(value: Any, message: str) -> None:
    with pytest.raises(CanonicalizationError, match=re.escape(message)) as caught:
        canonical_json(value)
    assert caught.value.__cause__ is None


def test_deep_nesting_is_refused() -> None:
    value: Any = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(CanonicalizationError, match="nested too deeply"):
        canonical_json(value)
