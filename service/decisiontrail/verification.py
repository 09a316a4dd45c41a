"""Verification of a tenant's log: every record, every chain, the Merkle tree, and the signed
checkpoints — online (records read through the SDKs) and offline (an export bundle) alike.

:class:`LogVerifier` consumes records in log order and keeps O(chains + log n) state, so it
verifies any number of records in bounded memory. It reports the first bad record and why:
``modified``, ``bad_signature``, ``missing``, ``reordered``, ``inserted``, ``replayed``,
``malformed``, ``checkpoint_mismatch`` (the log disagrees with a signed checkpoint),
``truncated`` (a trusted checkpoint is larger than the log: cut or rolled back) or
``bad_checkpoint`` (a checkpoint's signature does not verify).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from decisiontrail.records import GENESIS_HASH, RecordProblem, check_record, leaf_data
from decisiontrail.signing import TrustRoot
from ledgerstore import merkle


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint note and what it says."""

    note: str
    origin: str
    size: int
    root: bytes
    signers: tuple[str, ...]


class CheckpointError(ValueError):
    """A checkpoint note is malformed or not signed by a trusted key."""


def open_checkpoint(note: str, trust: TrustRoot, origin: str | None = None) -> SignedCheckpoint:
    """Check a C2SP checkpoint note's signature against the trust root and parse it."""
    try:
        body, signers = merkle.open_note(note, trust.note_verifiers())
        checkpoint = merkle.parse_checkpoint_body(body)
    except merkle.MerkleError as exc:
        raise CheckpointError(str(exc)) from None
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    return SignedCheckpoint(
        note, checkpoint.origin, checkpoint.size, checkpoint.root, tuple(signers)
    )


@dataclass
class _ChainState:
    expected: int = 0
    prev_hash: str = GENESIS_HASH


@dataclass
class VerificationReport:
    ok: bool
    records_checked: int
    tree_size: int
    root: str
    checkpoints_checked: int
    problem: RecordProblem | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records_checked": self.records_checked,
            "tree_size": self.tree_size,
            "root": self.root,
            "checkpoints_checked": self.checkpoints_checked,
            "first_problem": None
            if self.problem is None
            else {
                "reason": self.problem.reason,
                "record_id": self.problem.record_id,
                "sequence": self.problem.sequence,
                "detail": self.problem.detail,
            },
        }


GAP_LOOKAHEAD = 1_000  # records to look through for one that is missing or only moved


@dataclass
class LogVerifier:
    """Feed it a tenant's records in log order; it checks each as it comes."""

    tenant: str
    trust: TrustRoot
    checkpoints: list[SignedCheckpoint] = field(default_factory=list)
    trusted: SignedCheckpoint | None = None
    tree: merkle.CompactRange = field(default_factory=merkle.CompactRange)
    chains: dict[str, _ChainState] = field(default_factory=dict)
    records_checked: int = 0
    problem: RecordProblem | None = None
    checkpoints_checked: int = 0

    def __post_init__(self) -> None:
        # A gap in a chain: the problem, the chain, the sequence it lacks, the moved record's
        # sequence, and how many more records to look through for the lacking one.
        self._gap: tuple[RecordProblem, str, int, int | None, int] | None = None
        wanted = list(self.checkpoints) + ([self.trusted] if self.trusted else [])
        self._due = sorted(wanted, key=lambda c: c.size)
        self._check_due()

    def add(self, record: dict[str, Any], log_index: int | None = None) -> bool:
        """Check one more record (``log_index``: where the store says it belongs); False once
        a problem was found."""
        if self.problem is not None:
            return False
        if self._gap is not None:
            self._look_for_gap(record)
            return self.problem is None
        problem = self._check(record, log_index)
        if problem is not None and problem.reason == "missing":
            # Missing, or only moved? Look ahead: a record that comes later is "reordered".
            moved = record.get("sequence") if isinstance(record, dict) else None
            chain = str(record.get("chain"))
            self._gap = (problem, chain, problem.sequence or 0, moved, GAP_LOOKAHEAD)
            return True
        self.problem = problem
        if self.problem is None:
            self.tree.append(merkle.leaf_hash(leaf_data(record)))
            self._check_due()
        return self.problem is None

    def _look_for_gap(self, record: dict[str, Any]) -> None:
        assert self._gap is not None
        missing, chain, wanted, moved, left = self._gap
        found = (
            isinstance(record, dict)
            and str(record.get("chain")) == chain
            and record.get("sequence") == wanted
            and check_record(record, self.trust) is None
        )
        if found:
            detail = f"chain {chain!r}: #{wanted} comes after #{moved}"
            self.problem = RecordProblem("reordered", missing.record_id, moved, detail)
        elif left <= 1:
            self.problem = missing
        else:
            self._gap = (missing, chain, wanted, moved, left - 1)

    def _check(self, record: dict[str, Any], log_index: int | None) -> RecordProblem | None:
        problem = check_record(record, self.trust)
        if problem is not None:
            return problem
        record_id, sequence = record["id"], record["sequence"]
        if record["tenant"] != self.tenant:
            return RecordProblem("replayed", record_id, sequence, "the record is another tenant's")
        self.records_checked += 1
        state = self.chains.setdefault(str(record["chain"]), _ChainState())
        if sequence > state.expected:
            detail = (
                f"chain {record['chain']!r}: records {state.expected}–{sequence - 1} are missing"
            )
            return RecordProblem("missing", record_id, state.expected, detail)
        if sequence < state.expected:
            return RecordProblem(
                "inserted",
                record_id,
                sequence,
                f"chain {record['chain']!r} already has #{sequence}",
            )
        if record["prev_hash"] != state.prev_hash:
            return RecordProblem(
                "reordered", record_id, sequence, "the record does not link to its predecessor"
            )
        if log_index is not None and log_index != self.tree.size:
            # Every chain still links (records of different chains changed places), but the
            # record is not where the log put it.
            return RecordProblem(
                "reordered",
                record_id,
                sequence,
                f"the record was entry {log_index} of the log but is now entry {self.tree.size}",
            )
        state.expected, state.prev_hash = sequence + 1, record["hash"]
        return None

    def _check_due(self) -> None:
        while self._due and self._due[0].size == self.tree.size and self.problem is None:
            checkpoint = self._due.pop(0)
            self.checkpoints_checked += 1
            if checkpoint.root != self.tree.root():
                self.problem = RecordProblem(
                    "checkpoint_mismatch",
                    None,
                    None,
                    f"the first {checkpoint.size} records do not have the root the signed "
                    "checkpoint commits to",
                )

    def finish(self) -> VerificationReport:
        if self.problem is None and self._gap is not None:
            self.problem = self._gap[0]  # the lacking record never came
        if self.problem is None and self._due:
            largest = self._due[-1]
            self.problem = RecordProblem(
                "truncated",
                None,
                None,
                f"a signed checkpoint covers {largest.size} records but the log has "
                f"{self.tree.size}: records were cut off or the store was rolled back",
            )
        return VerificationReport(
            ok=self.problem is None,
            records_checked=self.records_checked,
            tree_size=self.tree.size,
            root=self.tree.root().hex(),
            checkpoints_checked=self.checkpoints_checked,
            problem=self.problem,
        )


def verify_records(
    records: Iterable[dict[str, Any]],
    *,
    tenant: str,
    trust: TrustRoot,
    checkpoints: Iterable[SignedCheckpoint] = (),
    trusted: SignedCheckpoint | None = None,
) -> VerificationReport:
    verifier = LogVerifier(tenant, trust, list(checkpoints), trusted)
    for record in records:
        if not verifier.add(record):
            break
    return verifier.finish()


VERIFY_CHUNK = 500  # records checked per hop to a worker thread


async def verify_off_loop(
    verifier: LogVerifier,
    receipts: AsyncIterator[tuple[dict[str, Any], int | None]],
    *,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Feed ``verifier`` a log read as a stream, checking hashes and signatures in a worker
    thread a chunk at a time, so the event loop serves other requests meanwhile and no more
    than a chunk of records is held in memory. ``progress`` is told how many records were
    checked after each chunk (the console shows it)."""
    chunk: list[tuple[dict[str, Any], int | None]] = []
    checked = 0

    def check(records: list[tuple[dict[str, Any], int | None]]) -> bool:
        return all(verifier.add(record, index) for record, index in records)

    async for item in receipts:
        chunk.append(item)
        if len(chunk) == VERIFY_CHUNK:
            if not await asyncio.to_thread(check, chunk):
                return
            checked += len(chunk)
            if progress is not None:
                progress(checked)
            chunk = []
    if chunk:
        complete = await asyncio.to_thread(check, chunk)
        if complete and progress is not None:
            progress(checked + len(chunk))
