"""Each record's own checks — canonical hash, Ed25519 signature, Merkle leaf hash — on every
core, a chunk of records at a time, for online and offline verification alike.

These checks are independent per record and CPU-bound (RFC 8785 canonicalisation twice, two
SHA-256, one Ed25519 verify: about 80 µs a record), while the checks that follow a record's
place in the log (chain links, log index, the Merkle tree, checkpoints) are sequential and
cheap. So :class:`RecordCheckers` sends chunks to worker processes (``spawn``, as
:mod:`decisiontrail.store_workers` does for writes) and hands back, in log order, each
record's problem (or None) and leaf hash for :meth:`LogVerifier.add_checked`. A chunk travels
as one orjson-encoded bytes object: pickling a thousand nested dicts costs more than encoding
them. Short logs (the first :data:`IN_PROCESS_RECORDS`) are checked in this process: starting
the workers costs more than checking them.
"""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import orjson

from decisiontrail.canonical import CanonicalizationError
from decisiontrail.records import RecordProblem, check_record, leaf_data
from decisiontrail.signing import TrustRoot
from ledgerstore import merkle

log = logging.getLogger("decisiontrail")

CHUNK = 1_000  # records per hop to a worker
IN_PROCESS_RECORDS = 4_000  # a log this short is checked without starting workers

Checked = tuple[RecordProblem | None, bytes | None]  # (problem, leaf hash when no problem)
# A record as the sequential checks need it (only the fields that place it in the log, when it
# passed its own checks), its log index, its problem, its leaf hash.
Outcome = tuple[Any, int | None, RecordProblem | None, bytes | None]
PLACE_FIELDS = ("id", "tenant", "chain", "sequence", "prev_hash", "hash")


def check_records(records: list[Any], trust: TrustRoot) -> list[Checked]:
    """Each record's own checks, in order."""
    results: list[Checked] = []
    for record in records:
        problem = check_record(record, trust)
        leaf: bytes | None = None
        if problem is None:
            try:
                leaf = merkle.leaf_hash(leaf_data(record))
            except CanonicalizationError as exc:  # pragma: no cover - hashed just above
                problem = RecordProblem("malformed", record.get("id"), None, str(exc))
        results.append((problem, leaf))
    return results


def check_bundle_lines(lines: list[tuple[int, bytes]], trust: TrustRoot) -> list[Outcome]:
    """The records of export-bundle lines (JSON Lines, see :mod:`decisiontrail.bundle`),
    decoded and checked; lines that are not records are skipped, lines that are not JSON
    are a ``malformed`` problem naming the line."""
    outcomes: list[Outcome] = []
    for number, line in lines:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            unreadable = f"line {number} is not JSON: {exc}"
            outcomes.append((None, None, RecordProblem("malformed", None, None, unreadable), None))
            continue
        if not isinstance(item, dict) or item.get("type") != "record":
            if not isinstance(item, dict) or "type" not in item:
                detail = f"line {number} is not a bundle item"
                outcomes.append((None, None, RecordProblem("malformed", None, None, detail), None))
            continue  # other items belong before the records: ignored here
        record, log_index = item.get("record"), item.get("log_index")
        ((problem, leaf),) = check_records([record], trust)
        index = log_index if isinstance(log_index, int) else None
        outcomes.append((_place(record) if problem is None else record, index, problem, leaf))
    return outcomes


def _place(record: Any) -> Any:
    """What the sequential checks read of a record that passed its own checks (a dict)."""
    if not isinstance(record, dict):
        return record
    return {name: record.get(name) for name in PLACE_FIELDS}


# --- in the worker ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)  # one trust root per verification; a few at once at most
def _trust(trust_json: bytes) -> TrustRoot:
    return TrustRoot.from_json(orjson.loads(trust_json))


def _start_worker() -> None:
    from decisiontrail.store_workers import collect_garbage_rarely, exit_with_parent

    exit_with_parent()
    collect_garbage_rarely()


def _check_encoded(encoded: bytes, trust_json: bytes) -> list[Checked]:
    records: list[Any] = orjson.loads(encoded)
    return check_records(records, _trust(trust_json))


def _check_lines(lines: list[tuple[int, bytes]], trust_json: bytes) -> list[Outcome]:
    return check_bundle_lines(lines, _trust(trust_json))


# --- in the verifier -------------------------------------------------------------------------


class RecordCheckers:
    """Worker processes checking chunks of records (one per core, started on first use)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._pool is None:
                try:
                    self._pool = ProcessPoolExecutor(
                        max_workers=self.workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_start_worker,
                    )
                except (OSError, RuntimeError) as exc:
                    log.warning("no record-check workers (%s); checking in-process", exc)
                    return None
            return self._pool

    def submit(self, records: list[Any], trust: TrustRoot) -> Future[list[Checked]]:
        """Check ``records`` in a worker (in this process if none can run); a future."""
        pool = self._executor()
        if pool is not None:
            try:
                return pool.submit(_check_encoded, orjson.dumps(records), _trust_json(trust))
            except (BrokenProcessPool, RuntimeError, TypeError) as exc:
                # A dead pool is replaced next time; a record orjson cannot encode (not plain
                # JSON) is checked here, where check_record names the problem.
                if not isinstance(exc, TypeError):
                    self._discard(pool)
        done: Future[list[Checked]] = Future()
        done.set_result(check_records(records, trust))
        return done

    def submit_lines(
        self, lines: list[tuple[int, bytes]], trust: TrustRoot
    ) -> Future[list[Outcome]]:
        """Decode and check bundle lines in a worker (here if none can run); a future."""
        pool = self._executor()
        if pool is not None:
            try:
                return pool.submit(_check_lines, lines, _trust_json(trust))
            except (BrokenProcessPool, RuntimeError):
                self._discard(pool)
        done: Future[list[Outcome]] = Future()
        done.set_result(check_bundle_lines(lines, trust))
        return done

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _trust_json(trust: TrustRoot) -> bytes:
    return orjson.dumps(trust.to_json())


_shared: RecordCheckers | None = None
_shared_lock = threading.Lock()


def shared_checkers() -> RecordCheckers:
    """The process's record checkers (closed at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RecordCheckers()
            atexit.register(_shared.close)
        return _shared
