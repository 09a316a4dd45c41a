"""Records checked in worker processes give the verifier the same answers as in-process checks,
for a good log and for tampered ones (the tampering past the in-process head of the log)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from decisiontrail.record_checks import IN_PROCESS_RECORDS, RecordCheckers
from decisiontrail.signing import Keyring
from decisiontrail.verification import LogVerifier, VerificationReport, verify_in_chunks

from .test_verification import build_log

COUNT = IN_PROCESS_RECORDS + 1_500  # the last chunks go to the workers


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Keyring:
    return Keyring.load_or_create(tmp_path_factory.mktemp("keys"), "dt.test")[0]


@pytest.fixture(scope="module")
def log(keyring: Keyring) -> list[dict[str, Any]]:
    return build_log(keyring, COUNT)


@pytest.fixture(scope="module")
def checkers() -> Iterator[RecordCheckers]:
    pool = RecordCheckers(workers=2)
    yield pool
    pool.close()


def verify(
    records: list[dict[str, Any]], keyring: Keyring, checkers: RecordCheckers | None
) -> VerificationReport:
    verifier = LogVerifier("t", keyring.trust)
    seen: list[int] = []
    verify_in_chunks(
        verifier, ((r, i) for i, r in enumerate(records)), checkers=checkers, progress=seen.append
    )
    assert seen == sorted(seen)
    return verifier.finish()


def test_workers_verify_a_good_log_to_the_same_root(
    log: list[dict[str, Any]], keyring: Keyring, checkers: RecordCheckers
) -> None:
    parallel = verify(log, keyring, checkers)
    alone = verify(log, keyring, None)
    assert parallel.ok and parallel.records_checked == COUNT
    assert parallel.root == alone.root and parallel.tree_size == COUNT


def _modified(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records[-300]["decision"]["action"] = "something else"
    return records


def _bad_signature(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    signature = bytearray(base64.b64decode(records[-300]["signature"]))
    signature[0] ^= 1
    records[-300]["signature"] = base64.b64encode(bytes(signature)).decode()
    return records


def _dropped(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    del records[-300]
    return records


def _not_an_object(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records[-300] = ["not", "a", "record"]  # type: ignore[call-overload]
    return records


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_modified, "modified"),
        (_bad_signature, "bad_signature"),
        (_dropped, "missing"),
        (_not_an_object, "malformed"),
    ],
)
def test_workers_find_the_same_first_problem(
    log: list[dict[str, Any]], keyring: Keyring, checkers: RecordCheckers, tamper: Any, reason: str
) -> None:
    tampered = tamper(copy.deepcopy(log))
    parallel = verify(tampered, keyring, checkers)
    alone = verify(tampered, keyring, None)
    assert not parallel.ok and parallel.problem is not None
    assert parallel.problem == alone.problem
    assert parallel.problem.reason == reason
    assert parallel.records_checked == alone.records_checked


def test_a_closed_pool_is_replaced(
    log: list[dict[str, Any]], keyring: Keyring, tmp_path: Path
) -> None:
    pool = RecordCheckers(workers=1)
    try:
        assert verify(log, keyring, pool).ok
        pool.close()
        assert verify(log, keyring, pool).ok  # started again on first use
    finally:
        pool.close()


def _bundle(path: Path, keyring: Keyring, records: list[Any]) -> Path:
    from decisiontrail.bundle import BundleWriter

    writer = BundleWriter(path)
    writer.header(tenant="t", origin="dt.test/t", note_name="dt.test", exported_at="now",
                  records=len(records))  # fmt: skip
    writer.write({"type": "trust_root", "trust_root": keyring.trust.to_json()})
    for index, record in enumerate(records):
        writer.write({"type": "record", "record": record, "log_index": index})
    writer.close()
    return path


@pytest.mark.parametrize("tamper", [None, _modified, _bad_signature, _dropped, _not_an_object])
def test_a_bundle_checked_by_workers_reports_what_one_checked_here_does(
    log: list[dict[str, Any]], keyring: Keyring, tmp_path: Path, tamper: Any
) -> None:
    from decisiontrail.bundle import verify_bundle

    records = log if tamper is None else tamper(copy.deepcopy(log))
    path = _bundle(tmp_path / "trail.jsonl.gz", keyring, records)
    parallel = verify_bundle(path, trust=keyring.trust).report
    alone = verify_bundle(path, trust=keyring.trust, workers=False).report
    assert parallel.ok is (tamper is None) and parallel == alone
    assert parallel.records_checked == alone.records_checked


def test_a_bundle_line_that_is_not_json_is_named(keyring: Keyring, tmp_path: Path) -> None:
    from decisiontrail.bundle import verify_bundle

    path = _bundle(tmp_path / "trail.jsonl", keyring, build_log(keyring, 3))
    with path.open("a") as handle:
        handle.write('{"type": "record", "rec\n')
    report = verify_bundle(path, trust=keyring.trust).report
    assert not report.ok and report.problem is not None
    assert report.problem.reason == "malformed" and "line 6 is not JSON" in report.problem.detail
