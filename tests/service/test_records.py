from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decisiontrail.records import (
    GENESIS_HASH,
    check_record,
    commitment_for,
    is_commitment,
    leaf_data,
    restore_personal,
    seal,
    seal_with_leaf,
    split_personal,
)
from decisiontrail.signing import Keyring
from decisiontrail.verification import verify_records

DECISION: dict[str, Any] = {
    "agent": "support-bot",
    "action": "refund",
    "input": {"customer": "Alice Example", "order": 42},
    "output": "approved",
    "metadata": {"email": "alice@example.com", "channel": "chat"},
    "data_subjects": ["customer-17"],
    "confidence": 0.91,
}


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.load_or_create(tmp_path / "keys", "dt.test/t")[0]


def make_chain(
    keyring: Keyring, n: int, tenant: str = "t", chain: str = "bot"
) -> list[dict[str, Any]]:
    records, prev = [], GENESIS_HASH
    start = datetime.now(UTC)
    for i in range(n):
        committed, _ = split_personal({**DECISION, "i": i}, ["input", "metadata.email"])
        record = seal(
            decision=committed, record_id=f"id-{i}", tenant=tenant, chain=chain, sequence=i,
            prev_hash=prev, recorded_at=start + timedelta(milliseconds=i), keyring=keyring,
        )  # fmt: skip
        records.append(record)
        prev = record["hash"]
    return records


def test_personal_values_become_salted_commitments() -> None:
    committed, taken = split_personal(DECISION, ["input", "metadata.email", "reasoning"])
    assert {p.path for p in taken} == {"input", "metadata.email", "data_subjects.0"}
    assert is_commitment(committed["input"]) and is_commitment(committed["data_subjects"][0])
    assert committed["metadata"]["channel"] == "chat" and committed["output"] == "approved"
    text = repr(committed)
    assert "Alice" not in text and "alice@" not in text and "customer-17" not in text
    again, _ = split_personal(DECISION, ["input"])
    assert again["input"] != committed["input"]  # a fresh salt each time: no dictionary attack
    assert restore_personal(committed, taken) == DECISION
    email = next(p for p in taken if p.path == "metadata.email")
    assert email.commitment == commitment_for("alice@example.com", email.salt)


def test_splitting_leaves_the_callers_decision_untouched() -> None:
    decision = {
        "agent": "a",
        "action": "x",
        "metadata": {"contact": {"emails": ["alice@example.com", "bob@example.com"]}},
        "data_subjects": ["customer-17"],
    }
    before = copy.deepcopy(decision)
    committed, taken = split_personal(decision, ["metadata.contact.emails.1", "metadata.none"])
    assert decision == before  # every container on a personal path was copied, not changed
    assert [p.path for p in taken] == ["metadata.contact.emails.1", "data_subjects.0"]
    assert committed["metadata"]["contact"]["emails"][0] == "alice@example.com"
    assert is_commitment(committed["metadata"]["contact"]["emails"][1])
    assert restore_personal(committed, taken) == before


_names = st.text(min_size=1, max_size=20).filter(
    lambda t: not any(0xD800 <= ord(c) < 0xE000 for c in t)
)
_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _names
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_names, children, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(decision=st.dictionaries(_names, _plain, max_size=6), tenant=_names, chain=_names)
def test_sealing_composes_the_same_bytes_as_canonicalizing_the_whole_record(
    decision: dict[str, Any], tenant: str, chain: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    keyring = Keyring.load_or_create(tmp_path_factory.getbasetemp() / "keys", "dt.test/t")[0]
    record, leaf = seal_with_leaf(
        decision=decision, record_id="0190-id", tenant=tenant, chain=chain, sequence=7,
        prev_hash=GENESIS_HASH, recorded_at=datetime.now(UTC), keyring=keyring,
    )  # fmt: skip
    assert leaf == leaf_data(record)  # the Merkle leaf a verifier recomputes
    assert check_record(record, keyring.trust) is None  # the hash a verifier recomputes
    assert list(record) == [
        "v", "id", "tenant", "chain", "sequence", "prev_hash", "recorded_at", "key_id",
        "decision", "hash", "signature",
    ]  # fmt: skip


def test_a_sealed_chain_verifies(keyring: Keyring) -> None:
    records = make_chain(keyring, 5)
    assert all(check_record(r, keyring.trust) is None for r in records)
    assert verify_records(records, tenant="t", trust=keyring.trust).ok


def test_malformed_records_are_reported_not_raised(keyring: Keyring) -> None:
    assert check_record("nope", keyring.trust).reason == "malformed"  # type: ignore[union-attr]
    broken = make_chain(keyring, 1)[0]
    del broken["signature"]
    assert check_record(broken, keyring.trust).reason == "malformed"  # type: ignore[union-attr]
