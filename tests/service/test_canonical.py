from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from decisiontrail.canonical import CanonicalizationError, _fast_path_ok, canonical_json

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-4, max_value=1e15, allow_nan=False)
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


def test_typical_decisions_take_the_fast_path() -> None:
    decision = {
        "agent": "support-bot",
        "confidence": 0.93,
        "model": {"name": "gpt-4o", "parameters": {"temperature": 0.2, "top_p": 0.95}},
        "usage": {"input_tokens": 1200, "cost": 0.0042},
        "input": "Refund order 42? Café ☕",
    }
    assert _fast_path_ok(decision)
    assert canonical_json(decision) == rfc8785.dumps(decision)


@pytest.mark.parametrize(
    "value", [1.0, 1e-7, 1e21, -0.0, 123456789012345680.0, {"\U0001f600": 1, "\ue000": 2}]
)
def test_values_where_the_formats_differ_use_the_reference(value: Any) -> None:
    assert not _fast_path_ok(value)
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [2**53, math.nan, math.inf, {1: "x"}, {"a": object()}])
def test_values_outside_json_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json(value)
