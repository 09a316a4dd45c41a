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
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from decisiontrail.record_checks import (
    CHUNK,
    IN_PROCESS_RECORDS,
    Checked,
    Outcome,
    RecordCheckers,
    check_records,
    shared_checkers,
)
from decisiontrail.records import GENESIS_HASH, RecordProblem
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
        return self.add_checked(record, log_index, *check_records([record], self.trust)[0])

    def add_checked(
        self,
        record: Any,
        log_index: int | None,
        problem: RecordProblem | None,
        leaf: bytes | None,
    ) -> bool:
        """:meth:`add` for a record whose own checks (:func:`check_records`: hash, signature,
        leaf hash) were done already, maybe in another process."""
        if self.problem is not None:
            return False
        if self._gap is not None:
            self._look_for_gap(record, problem)
            return self.problem is None
        problem = problem or self._check_place(record, log_index)
        if problem is not None and problem.reason == "missing":
            # Missing, or only moved? Look ahead: a record that comes later is "reordered".
            moved = record.get("sequence") if isinstance(record, dict) else None
            chain = str(record.get("chain"))
            self._gap = (problem, chain, problem.sequence or 0, moved, GAP_LOOKAHEAD)
            return True
        self.problem = problem
        if self.problem is None:
            assert leaf is not None, "a record that verifies has a leaf hash"
            self.tree.append(leaf)
            self._check_due()
        return self.problem is None

    def _look_for_gap(self, record: Any, problem: RecordProblem | None) -> None:
        assert self._gap is not None
        missing, chain, wanted, moved, left = self._gap
        found = (
            isinstance(record, dict)
            and str(record.get("chain")) == chain
            and record.get("sequence") == wanted
            and problem is None
        )
        if found:
            detail = f"chain {chain!r}: #{wanted} comes after #{moved}"
            self.problem = RecordProblem("reordered", missing.record_id, moved, detail)
        elif left <= 1:
            self.problem = missing
        else:
            self._gap = (missing, chain, wanted, moved, left - 1)

    def _check_place(self, record: dict[str, Any], log_index: int | None) -> RecordProblem | None:
        """The checks of a record's place: its tenant, its chain, its log index."""
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


Indexed = tuple[Any, int | None]  # a record and the log index the store gives it
IN_FLIGHT_PER_WORKER = 2  # chunks queued per worker: one checked, one waiting


def _apply(verifier: LogVerifier, chunk: list[Indexed], checked: list[Checked]) -> bool:
    """The sequential checks of a chunk whose records' own checks are done."""
    return all(
        verifier.add_checked(record, index, problem, leaf)
        for (record, index), (problem, leaf) in zip(chunk, checked, strict=True)
    )


def verify_in_chunks(
    verifier: LogVerifier,
    records: Iterable[Indexed],
    *,
    checkers: RecordCheckers | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Feed ``verifier`` a log read as a stream: each record's own checks in worker processes
    (past the first :data:`IN_PROCESS_RECORDS`), a chunk at a time with a few chunks in
    flight, the sequential checks here in log order. Memory: a few chunks."""

    def started(chunk: list[Indexed], seen: int) -> Callable[[], list[Outcome]]:
        future = _submit(checkers, chunk, verifier.trust, seen)
        return lambda: [
            (record, index, problem, leaf)
            for (record, index), (problem, leaf) in zip(
                chunk, _result(future, chunk, verifier.trust), strict=True
            )
        ]

    def pending() -> Iterator[Callable[[], list[Outcome]]]:
        seen = 0
        for chunk in _chunks(records):
            seen += len(chunk)
            yield started(chunk, seen)

    in_flight = 1 if checkers is None else checkers.workers * IN_FLIGHT_PER_WORKER
    verify_outcomes(verifier, pending(), in_flight=in_flight, progress=progress)


def verify_outcomes(
    verifier: LogVerifier,
    pending: Iterable[Callable[[], list[Outcome]]],
    *,
    in_flight: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Feed ``verifier`` chunks of records whose own checks were started elsewhere (each a
    call that waits for them), at most ``in_flight`` chunks ahead, in order."""
    queue: deque[Callable[[], list[Outcome]]] = deque()
    done = 0

    def flush(keep: int) -> bool:
        nonlocal done
        while len(queue) > keep:
            outcomes = queue.popleft()()
            if not all(verifier.add_checked(*outcome) for outcome in outcomes):
                return False
            done += len(outcomes)
            if progress is not None:
                progress(done)
        return True

    for started in pending:
        queue.append(started)
        if not flush(in_flight - 1):
            return
    flush(0)


async def verify_off_loop(
    verifier: LogVerifier,
    receipts: AsyncIterator[Indexed],
    *,
    progress: Callable[[int], None] | None = None,
    checkers: RecordCheckers | None = None,
) -> None:
    """:func:`verify_in_chunks` for a log read asynchronously: reading goes on in the event
    loop, so it serves other requests meanwhile; records are checked in worker processes
    (``checkers``, the process's shared ones by default) or, for the first
    :data:`IN_PROCESS_RECORDS`, in a worker thread. ``progress`` is told how many records
    were checked after each chunk (the console shows it)."""
    checkers = checkers or shared_checkers()
    in_flight: deque[tuple[list[Indexed], asyncio.Future[list[Checked]]]] = deque()
    limit = checkers.workers * IN_FLIGHT_PER_WORKER
    chunk: list[Indexed] = []
    seen = done = 0

    async def drain(keep: int) -> bool:
        nonlocal done
        while len(in_flight) > keep:
            records, future = in_flight.popleft()
            try:
                checked = await future
            except BrokenProcessPool:  # a worker died: check this chunk here
                checked = await asyncio.to_thread(check_records, [r for r, _ in records],
                                                  verifier.trust)  # fmt: skip
            if not _apply(verifier, records, checked):
                return False
            done += len(records)
            if progress is not None:
                progress(done)
        return True

    def submit(records: list[Indexed]) -> asyncio.Future[list[Checked]]:
        if seen <= IN_PROCESS_RECORDS:
            return asyncio.ensure_future(
                asyncio.to_thread(check_records, [r for r, _ in records], verifier.trust)
            )
        return asyncio.wrap_future(checkers.submit([r for r, _ in records], verifier.trust))

    async for item in receipts:
        chunk.append(item)
        if len(chunk) == CHUNK:
            seen += len(chunk)
            in_flight.append((chunk, submit(chunk)))
            chunk = []
            if not await drain(limit - 1):
                _cancel(in_flight)
                return
    if chunk:
        seen += len(chunk)
        in_flight.append((chunk, submit(chunk)))
    if not await drain(0):
        _cancel(in_flight)


def _cancel(in_flight: deque[tuple[list[Indexed], asyncio.Future[list[Checked]]]]) -> None:
    for _, future in in_flight:
        future.cancel()


def _chunks(records: Iterable[Indexed]) -> Iterator[list[Indexed]]:
    chunk: list[Indexed] = []
    for item in records:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _submit(
    checkers: RecordCheckers | None, chunk: list[Indexed], trust: TrustRoot, seen: int
) -> Future[list[Checked]]:
    records = [record for record, _ in chunk]
    if checkers is None or seen <= IN_PROCESS_RECORDS:
        done: Future[list[Checked]] = Future()
        done.set_result(check_records(records, trust))
        return done
    return checkers.submit(records, trust)


def _result(future: Future[list[Checked]], chunk: list[Indexed], trust: TrustRoot) -> list[Checked]:
    try:
        return future.result()
    except BrokenProcessPool:  # a worker died: check this chunk here
        return check_records([record for record, _ in chunk], trust)
