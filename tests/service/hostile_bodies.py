"""Hypothesis strategies for request bodies that ``POST /v1/decisions`` and
``POST /v1/decisions/batch`` must refuse: every body here is invalid by construction.

Kept out on purpose (each has its own test in ``test_schema_fuzz``): NaN and infinities in
free-form fields, lone UTF-16 surrogates (escaped, or as their UTF-8 form, which Python's
``json`` reads with ``surrogatepass``), and nesting beyond ~250 levels (the parser's own limit
moves with the recursion limit, which hypothesis raises while it runs a test).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

MAX_BATCH = 5  # the service under test is configured with this max_batch_size
VALID: dict[str, Any] = {"agent": "bot", "action": "answer"}
KINDS = {
    "llm_call", "tool_call", "agent_action", "agent_finish", "retrieval", "chain",
    "human_review", "custom",
}  # fmt: skip
PERSONAL_ROOTS = {"input", "output", "reasoning", "metadata", "oversight", "tags"}
ENVELOPE_FIELDS = {
    "agent", "action", "kind", "model", "input", "output", "reasoning", "confidence",
    "data_subjects", "session_id", "run_id", "parent_run_id", "trace_id", "span_id", "usage",
    "started_at", "ended_at", "tags", "metadata", "oversight", "personal",
}  # fmt: skip
TRUTHY_OR_FALSY = {"0", "1", "t", "f", "y", "n", "on", "no", "off", "yes", "true", "false"}
# Bytes that are not UTF-8. Not among them: a surrogate's UTF-8 form (b"\xed\xa0\x80").
INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xf8\x88\x80\x80", b"\x80", b"\xe2\x82"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "null", "\\u0000", "\x00", "💥"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
huge_integers = st.integers(min_value=2**53) | st.integers(max_value=-(2**53))
bad_names = st.one_of(
    st.just(""),
    st.text(min_size=201, max_size=260).filter(lambda s: len(s) > 200),
    st.text(max_size=10).map(lambda s: s + "\x00"),
    st.just("a\nb"),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
)
not_a_probability = st.one_of(
    st.floats(min_value=1.0, exclude_min=True, allow_nan=False),
    st.floats(max_value=0.0, exclude_max=True, allow_nan=False),
    st.just(float("nan")),
    st.just(float("inf")),
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
    st.text(alphabet="abcxyz!", min_size=1, max_size=5),
)


def _field(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[str, Any]]:
    return st.tuples(st.just(name), values)


def _nested(depth: int, innermost: Any) -> Any:
    for _ in range(depth):
        innermost = [innermost]
    return innermost


# Up to 200 levels: the canonical encoder's slow path runs (beyond 64) and must still refuse.
deeply_nested_huge_integers = st.builds(_nested, st.integers(2, 200), huge_integers)


# (field, a value the field must refuse): each makes an otherwise valid decision invalid.
poisons = st.one_of(
    _field("agent", bad_names),
    _field("action", st.sampled_from(["", 7, None]) | st.text(min_size=501, max_size=520)),
    _field("kind", st.text(max_size=12).filter(lambda s: s not in KINDS)),
    _field("confidence", not_a_probability),
    _field("input", huge_integers | deeply_nested_huge_integers),
    _field("output", st.lists(huge_integers, min_size=1, max_size=3)),
    _field(
        "metadata",
        st.lists(json_values, max_size=3)
        | st.text(max_size=5)
        | st.integers()
        | st.dictionaries(st.text(max_size=5), huge_integers, min_size=1, max_size=2),
    ),
    _field(
        "personal",
        st.lists(
            st.text(max_size=8).filter(lambda s: s.split(".", 1)[0] not in PERSONAL_ROOTS),
            min_size=1,
            max_size=3,
        ),
    ),
    _field(
        "data_subjects",
        st.text(max_size=5)
        | st.lists(st.just("s"), min_size=101, max_size=105)
        | st.lists(st.sampled_from(["", 1, None]), min_size=1, max_size=2),
    ),
    _field(
        "trace_id",
        st.text(max_size=40).filter(
            lambda s: len(s) != 32 or any(c not in "0123456789abcdef" for c in s)
        ),
    ),
    _field(
        "started_at",
        st.sampled_from(["2024-01-01T00:00:00", "yesterday", "2024-13-01T00:00:00Z", "", [2024]]),
    ),
    _field(
        "model",
        st.sampled_from([{}, {"provider": "x"}])
        | st.text()
        | st.fixed_dictionaries({"name": bad_names}),
    ),
    _field(
        "usage",
        st.fixed_dictionaries(
            {
                "input_tokens": st.integers(max_value=-1)
                | st.text(min_size=1, max_size=3).filter(
                    lambda s: not s.strip().lstrip("+-").isdigit()
                )
            }
        ),
    ),
    _field(
        "oversight",
        st.fixed_dictionaries(
            {"overridden": st.text(max_size=3).filter(lambda s: s.lower() not in TRUTHY_OR_FALSY)}
        ),
    ),
    st.tuples(  # a field the envelope does not have
        st.text(min_size=1, max_size=12).filter(lambda s: s not in ENVELOPE_FIELDS), json_values
    ),
)
valid_extras = st.fixed_dictionaries({}, optional={"input": json_values, "tags": st.just(["t"])})
poisoned = st.tuples(valid_extras, poisons).map(
    lambda pair: {**VALID, **pair[0], pair[1][0]: pair[1][1]}
)
missing_a_field = st.tuples(
    st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    st.sampled_from(["agent", "action"]),
).map(lambda pair: {k: v for k, v in {**VALID, **pair[0]}.items() if k != pair[1]})
PLACEHOLDER = "\ue000"
broken_utf8 = st.tuples(
    st.sampled_from(["agent", "action", "input"]),
    st.text(alphabet="abc", max_size=5),
    st.sampled_from(INVALID_UTF8),
).map(
    lambda t: (
        json.dumps({**VALID, t[0]: t[1] + PLACEHOLDER}, ensure_ascii=False)
        .encode()
        .replace(PLACEHOLDER.encode(), t[2])
    )
)


def encode(value: Any) -> bytes:
    """JSON text; NaN and infinities become the bare tokens Python's json reads back."""
    return json.dumps(value).encode()


single_bodies = st.one_of(
    st.binary(max_size=200),
    broken_utf8,
    (scalars | st.lists(json_values, max_size=4)).map(encode),  # not an object
    missing_a_field.map(encode),
    poisoned.map(encode),
)
batch_bodies = st.one_of(
    st.binary(max_size=200),
    broken_utf8.map(lambda body: b"[" + body + b"]"),
    (scalars | st.dictionaries(st.text(max_size=5), json_values, max_size=3)).map(encode),
    st.just(b"[]"),
    st.lists(st.just(VALID), min_size=MAX_BATCH + 1, max_size=MAX_BATCH + 3).map(encode),
    # valid decisions with one bad one among them: the batch is refused as a whole
    st.tuples(
        st.lists(st.just(VALID), max_size=MAX_BATCH - 1),
        poisoned | missing_a_field | scalars,
        st.integers(0, MAX_BATCH),
    ).map(lambda t: encode([*t[0][: t[2]], t[1], *t[0][t[2] :]])),
)
