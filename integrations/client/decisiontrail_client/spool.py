"""The durable local spool: batches the service could not take, on disk until it takes them.

Hand-written because no maintained library offers an fsynced, size-bounded, multi-process
append log with claim-by-lock replay (persist-queue and diskcache lack the locking or the
fsync grouping). Layout: a directory of segment files ``seg-<ns>-<pid>-<rand>.jsonl``, one
batch per line (``{"key": idempotency key, "records": [...]}``) appended with one fsync per
append call (a group of batches), and beside each segment a ``.acked`` file with the number
of its lines the service has acknowledged. A process claims a segment with an exclusive
``flock`` and keeps it while it lives, so two processes never replay one segment at once;
the segments of a process that died are claimed by the next spool opened on the directory.
The ``.acked`` counter is written without fsync: a batch replayed twice after a crash carries
the same idempotency key, and the service answers the second with the first's receipts.

Bound: at most ``max_bytes`` on disk. A batch that would pass it is refused (the caller
counts it as dropped and logs it): the oldest records, which are the ones already waiting
longest for the service, are never the ones thrown away.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEGMENT_BYTES = 8 * 1024 * 1024  # a new segment after this many bytes


@dataclass(frozen=True)
class SpooledBatch:
    """A batch as it was first formed: replaying it sends exactly these records, this key."""

    key: str
    records: list[dict[str, Any]]
    record_keys: list[str]
    prepared: bool = True  # False: spooled by the caller, redaction and hook still to run


@dataclass
class _Segment:
    path: Path
    fd: int  # holds the flock while this process owns the segment
    acked: int = 0  # lines acknowledged so far
    lines: list[bytes] | None = None  # unacknowledged complete lines, once loaded
    size: int = 0


@dataclass
class Spool:
    directory: Path
    max_bytes: int = 1024 * 1024 * 1024
    _segments: dict[Path, _Segment] = field(default_factory=dict)
    _writer: _Segment | None = None
    _bytes: int = 0

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._bytes = sum(p.stat().st_size for p in self.directory.glob("seg-*.jsonl"))

    # --- writing ---------------------------------------------------------------------------

    def append(self, batches: Sequence[SpooledBatch]) -> int:
        """Write batches durably (one fsync for the group). Returns how many were written:
        the rest would have passed ``max_bytes``."""
        lines: list[bytes] = []
        for batch in batches:
            entry: dict[str, Any] = {
                "key": batch.key, "records": batch.records, "record_keys": batch.record_keys
            }  # fmt: skip
            if not batch.prepared:
                entry["prepared"] = False
            line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()
            if self._bytes + len(line) + 1 > self.max_bytes:
                break
            self._bytes += len(line) + 1
            lines.append(line + b"\n")
        if not lines:
            return 0
        writer = self._writer_segment()
        data = b"".join(lines)
        os.write(writer.fd, data)
        os.fsync(writer.fd)
        writer.size += len(data)
        if writer.lines is not None:
            writer.lines.extend(line[:-1] for line in lines)
        if writer.size >= SEGMENT_BYTES:
            self._writer = None  # the next append opens a new segment
        return len(lines)

    def _writer_segment(self) -> _Segment:
        if self._writer is None:
            name = f"seg-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
            path = self.directory / name
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fsync_directory()
            segment = _Segment(path, fd, lines=[])
            self._segments[path] = segment
            self._writer = segment
        return self._writer

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- replaying -------------------------------------------------------------------------

    def claim_orphans(self) -> None:
        """Claim the segments no live process holds (left by one that died or closed)."""
        for path in sorted(self.directory.glob("seg-*.jsonl")):
            if path in self._segments:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND)
            except FileNotFoundError:  # another process finished it meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if not path.exists():  # finished and removed between our open and our lock
                os.close(fd)
                continue
            segment = _Segment(path, fd, acked=_read_acked(path), size=os.fstat(fd).st_size)
            self._segments[path] = segment

    def peek(self) -> tuple[Path, SpooledBatch] | None:
        """The oldest unacknowledged batch of the claimed segments, or None."""
        for path in sorted(self._segments):
            segment = self._segments[path]
            lines = self._unacked_lines(segment)
            while lines:
                batch = _parse(lines[0])
                if batch is not None:
                    return path, batch
                torn = lines.pop(0)  # a torn line of a process that died mid-append
                segment.acked += 1
                self._bytes = max(0, self._bytes - len(torn) - 1)
            if segment is not self._writer:
                self._finish(segment)
        return None

    def ack(self, path: Path) -> None:
        """The oldest batch of ``path`` (as ``peek`` named it) reached the service."""
        segment = self._segments[path]
        lines = self._unacked_lines(segment)
        line = lines.pop(0)
        segment.acked += 1
        self._bytes = max(0, self._bytes - len(line) - 1)
        if not lines and segment is not self._writer:
            self._finish(segment)
        else:
            _write_acked(path, segment.acked)

    def pending(self) -> int:
        """Records waiting in the claimed segments (counting loads them)."""
        total = 0
        for segment in self._segments.values():
            for line in self._unacked_lines(segment):
                batch = _parse(line)
                total += 0 if batch is None else len(batch.records)
        return total

    def has_pending(self) -> bool:
        return any(self._unacked_lines(segment) for segment in self._segments.values())

    def _unacked_lines(self, segment: _Segment) -> list[bytes]:
        if segment.lines is None:
            with open(segment.path, "rb") as file:
                complete = file.read().split(b"\n")[:-1]  # a torn tail has no newline yet
            segment.lines = complete[segment.acked :]
        return segment.lines

    def _finish(self, segment: _Segment) -> None:
        """Every line acknowledged: remove the segment and release it."""
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        with contextlib.suppress(FileNotFoundError):
            _acked_path(segment.path).unlink()
        os.close(segment.fd)
        del self._segments[segment.path]
        if self._writer is segment:
            self._writer = None

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        for segment in list(self._segments.values()):
            if segment.lines is not None and not segment.lines:
                self._finish(segment)  # nothing left in it
            else:
                os.close(segment.fd)  # releases the claim: the next spool replays it
        self._segments.clear()
        self._writer = None

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptors (the parent keeps its locks,
        which belong to the open file, not to a descriptor) and start with no segment."""
        for segment in self._segments.values():
            with contextlib.suppress(OSError):
                os.close(segment.fd)
        self._segments.clear()
        self._writer = None


def _acked_path(path: Path) -> Path:
    return path.with_suffix(".acked")


def _read_acked(path: Path) -> int:
    try:
        return int(_acked_path(path).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_acked(path: Path, count: int) -> None:
    temporary = path.with_suffix(".acked.tmp")
    temporary.write_text(str(count))
    os.replace(temporary, _acked_path(path))


def _parse(line: bytes) -> SpooledBatch | None:
    try:
        value = json.loads(line)
        prepared = value.get("prepared", True) is not False
        return SpooledBatch(value["key"], value["records"], value["record_keys"], prepared)
    except (ValueError, KeyError, TypeError):
        return None
