from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from decisiontrail.records import GENESIS_HASH, leaf_data, seal, split_personal
from decisiontrail.signing import Keyring
from decisiontrail.verification import (
    CheckpointError,
    SignedCheckpoint,
    open_checkpoint,
    verify_records,
)
from ledgerstore import merkle

ORIGIN = "dt.test/t"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.load_or_create(tmp_path / "keys", "dt.test")[0]


def build_log(keyring: Keyring, n: int) -> list[dict[str, Any]]:
    """Records of two interleaved chains, in log order."""
    prev = {"a": GENESIS_HASH, "b": GENESIS_HASH}
    seq = {"a": 0, "b": 0}
    start = datetime.now(UTC)
    log = []
    for i in range(n):
        chain = "ab"[i % 2]
        decision, _ = split_personal(
            {"agent": chain, "action": f"act {i}", "input": "x"}, ["input"]
        )
        record = seal(
            decision=decision, record_id=f"r{i}", tenant="t", chain=chain, sequence=seq[chain],
            prev_hash=prev[chain], recorded_at=start + timedelta(milliseconds=i), keyring=keyring,
        )  # fmt: skip
        prev[chain], seq[chain] = record["hash"], seq[chain] + 1
        log.append(record)
    return log


def checkpoint(keyring: Keyring, records: list[dict[str, Any]]) -> SignedCheckpoint:
    root = merkle.root_from_leaves([leaf_data(r) for r in records])
    note = keyring.sign_note(merkle.Checkpoint(ORIGIN, len(records), root).body())
    return open_checkpoint(note, keyring.trust, ORIGIN)


def test_a_good_log_verifies_against_its_checkpoints(keyring: Keyring) -> None:
    log = build_log(keyring, 20)
    cps = [checkpoint(keyring, log[:5]), checkpoint(keyring, log[:12])]
    report = verify_records(
        log, tenant="t", trust=keyring.trust, checkpoints=cps, trusted=checkpoint(keyring, log)
    )
    assert report.ok and report.records_checked == 20 and report.checkpoints_checked == 3


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda log: log[7]["decision"].__setitem__("action", "other"), "modified"),
        (lambda log: log.pop(6), "missing"),
        (lambda log: log.insert(9, copy.deepcopy(log[5])), "inserted"),
        (lambda log: log[8].__setitem__("tenant", "u"), "modified"),
    ],
)
def test_each_kind_of_tampering_is_named(keyring: Keyring, tamper: Any, reason: str) -> None:
    log = build_log(keyring, 20)
    tamper(log)
    report = verify_records(log, tenant="t", trust=keyring.trust)
    assert not report.ok and report.problem is not None
    assert report.problem.reason == reason


def test_a_cut_tail_is_caught_only_by_a_trusted_checkpoint(keyring: Keyring) -> None:
    log = build_log(keyring, 20)
    trusted = checkpoint(keyring, log)
    assert verify_records(log[:15], tenant="t", trust=keyring.trust).ok
    report = verify_records(log[:15], tenant="t", trust=keyring.trust, trusted=trusted)
    assert report.problem is not None and report.problem.reason == "truncated"


def test_a_rewritten_history_disagrees_with_the_checkpoint(keyring: Keyring) -> None:
    log = build_log(keyring, 10)
    trusted = checkpoint(keyring, log[:6])
    forged = build_log(keyring, 10)  # same shape, other signatures and hashes
    report = verify_records(forged, tenant="t", trust=keyring.trust, trusted=trusted)
    assert report.problem is not None and report.problem.reason == "checkpoint_mismatch"


def test_checkpoints_need_a_trusted_signature(keyring: Keyring, tmp_path: Path) -> None:
    other, _ = Keyring.load_or_create(tmp_path / "other", "dt.test")
    note = other.sign_note(merkle.Checkpoint(ORIGIN, 1, bytes(32)).body())
    with pytest.raises(CheckpointError):
        open_checkpoint(note, keyring.trust, ORIGIN)
    good = keyring.sign_note(merkle.Checkpoint(ORIGIN, 1, bytes(32)).body())
    with pytest.raises(CheckpointError):
        open_checkpoint(good, keyring.trust, "dt.test/other-tenant")
    with pytest.raises(CheckpointError):
        open_checkpoint("garbage", keyring.trust)


def test_a_gap_is_missing_unless_the_record_comes_later(keyring: Keyring) -> None:
    log = build_log(keyring, 12)  # chain a: r0 r2 r4 …, chain b: r1 r3 …
    deleted = log[:4] + log[5:]  # r4 (a #2) gone
    report = verify_records(deleted, tenant="t", trust=keyring.trust)
    assert report.problem is not None
    assert (report.problem.reason, report.problem.record_id, report.problem.sequence) == (
        "missing", "r6", 2,
    )  # fmt: skip
    swapped = [*log[:4], log[6], log[5], log[4], *log[7:]]  # a #3 before a #2
    report = verify_records(swapped, tenant="t", trust=keyring.trust)
    assert report.problem is not None
    assert (report.problem.reason, report.problem.record_id, report.problem.sequence) == (
        "reordered", "r6", 3,
    )  # fmt: skip
    cut = [*log[:4], log[6]]  # a #3 is the last record: #2 never comes
    report = verify_records(cut, tenant="t", trust=keyring.trust)
    assert report.problem is not None and report.problem.reason == "missing"
