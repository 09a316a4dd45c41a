"""Export bundles: a tenant's log in one self-contained file, verifiable offline.

A bundle is JSON Lines (gzip-compressed when the file name ends in ``.gz``):

    {"type": "header", "format": "decisiontrail-bundle/v1", "tenant": …, "origin": …,
     "exported_at": …, "records": n}
    {"type": "trust_root", "trust_root": {…public keys with validity windows…}}
    {"type": "checkpoint", "note": "<signed C2SP checkpoint note>"}      (every one issued)
    {"type": "record", "record": {…sealed record…}}                       (in log order)

Verifying needs nothing but the bundle and a public key (or trust root) obtained out of band;
the bundle's own trust root is used only when the caller passes none, and the report says so.
Records are streamed: memory stays bounded whatever the bundle's size.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson

from decisiontrail.record_checks import (
    CHUNK,
    IN_PROCESS_RECORDS,
    Outcome,
    RecordCheckers,
    check_bundle_lines,
    shared_checkers,
)
from decisiontrail.signing import TrustRoot
from decisiontrail.verification import (
    CheckpointError,
    LogVerifier,
    SignedCheckpoint,
    VerificationReport,
    open_checkpoint,
    verify_outcomes,
)

FORMAT = "decisiontrail-bundle/v1"


class BundleError(ValueError):
    """The bundle cannot be read."""


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        if mode == "w":
            return gzip.open(path, "wt", encoding="utf-8")
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(mode, encoding="utf-8")


class BundleWriter:
    """Writes a bundle line by line (records may be streamed in)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = _open(path, "w")

    def write(self, item: dict[str, Any]) -> None:
        self._file.write(json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n")

    def header(
        self, *, tenant: str, origin: str, note_name: str, exported_at: str, records: int
    ) -> None:
        self.write({"type": "header", "format": FORMAT, "tenant": tenant, "origin": origin,
                    "note_name": note_name, "exported_at": exported_at,
                    "records": records})  # fmt: skip

    def close(self) -> None:
        self._file.close()


def read_bundle(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with _open(path, "r") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise BundleError(f"line {number} is not JSON: {exc.msg}") from None
                if not isinstance(item, dict) or "type" not in item:
                    raise BundleError(f"line {number} is not a bundle item")
                yield item
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from None


@dataclass
class BundleReport:
    report: VerificationReport
    tenant: str
    used_bundled_trust_root: bool
    declared_records: int

    def to_json(self) -> dict[str, Any]:
        return {
            **self.report.to_json(),
            "tenant": self.tenant,
            "used_bundled_trust_root": self.used_bundled_trust_root,
            "declared_records": self.declared_records,
        }


def verify_bundle(
    path: Path,
    *,
    trust: TrustRoot | None = None,
    trusted_checkpoint: str | None = None,
    progress: Callable[[int], None] | None = None,
    workers: bool = True,
) -> BundleReport:
    """Verify a bundle offline against a trust root and an optional trusted checkpoint.

    Records are checked in worker processes, one per core (``workers=False``: in this
    process); ``progress`` is told how many records were checked, a chunk at a time."""
    try:
        with _open_binary(path) as handle:
            return _verify(handle, trust, trusted_checkpoint, progress, workers)
    except (OSError, EOFError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from None


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _verify(
    handle: IO[bytes],
    trust: TrustRoot | None,
    trusted_checkpoint: str | None,
    progress: Callable[[int], None] | None,
    workers: bool,
) -> BundleReport:
    """The header, trust root and checkpoints are read here; the records' lines go to the
    workers undecoded (decoding them is a fifth of the work), a chunk at a time."""
    lines = ((n, line) for n, line in enumerate(handle, start=1) if line.strip())
    header: dict[str, Any] | None = None
    bundled: TrustRoot | None = None
    notes: list[str] = []
    first: tuple[int, bytes] | None = None
    for number, line in lines:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BundleError(f"line {number} is not JSON: {exc.msg}") from None
        if not isinstance(item, dict) or "type" not in item:
            raise BundleError(f"line {number} is not a bundle item")
        if header is None:
            if item.get("type") != "header" or item.get("format") != FORMAT:
                raise BundleError(f"not a {FORMAT} bundle")
            header = item
        elif item["type"] == "trust_root":
            bundled = TrustRoot.from_json(item["trust_root"])
        elif item["type"] == "checkpoint":
            notes.append(str(item["note"]))
        elif item["type"] == "record":
            first = (number, line)
            break
    if header is None:
        raise BundleError(f"not a {FORMAT} bundle")
    tenant, origin = str(header["tenant"]), str(header["origin"])
    verifier = _start(tenant, origin, trust or bundled, notes, trusted_checkpoint)
    if first is not None:
        checkers = shared_checkers() if workers else None
        chunks = enumerate(_chunks(itertools.chain([first], lines)))
        verify_outcomes(
            verifier,
            # a short bundle is checked here: starting the workers costs more
            (
                _submit(
                    checkers if n * CHUNK >= IN_PROCESS_RECORDS else None, chunk, verifier.trust
                )
                for n, chunk in chunks
            ),
            in_flight=2 * checkers.workers if checkers else 1,
            progress=progress,
        )
    return BundleReport(verifier.finish(), tenant, trust is None, int(header.get("records", 0)))


def _chunks(lines: Iterator[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    while chunk := list(itertools.islice(lines, CHUNK)):
        yield chunk


def _submit(
    checkers: RecordCheckers | None, chunk: list[tuple[int, bytes]], trust: TrustRoot
) -> Callable[[], list[Outcome]]:
    """A call that answers the chunk's outcomes (checked in a worker, or here)."""
    if checkers is None:
        return functools.partial(check_bundle_lines, chunk, trust)
    future = checkers.submit_lines(chunk, trust)

    def result() -> list[Outcome]:
        try:
            return future.result()
        except BrokenProcessPool:  # a worker died: check the chunk here
            return check_bundle_lines(chunk, trust)

    return result


def _start(
    tenant: str, origin: str, trust: TrustRoot | None, notes: list[str], trusted: str | None
) -> LogVerifier:
    if trust is None:
        raise BundleError("no public key given and the bundle carries no trust root")
    try:
        checkpoints: list[SignedCheckpoint] = [open_checkpoint(n, trust, origin) for n in notes]
        pinned = open_checkpoint(trusted, trust, origin) if trusted else None
    except CheckpointError as exc:
        raise BundleError(f"a checkpoint does not verify: {exc}") from None
    return LogVerifier(tenant, trust, checkpoints, pinned)


async def export(
    path: Path,
    *,
    tenant: str,
    origin: str,
    trust: TrustRoot,
    exported_at: str,
    notes: list[str],
    records: AsyncIterator[tuple[dict[str, Any], int]],
    count: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a bundle; returns the number of records written."""
    writer = BundleWriter(path)
    written = 0
    try:
        writer.header(
            tenant=tenant, origin=origin, note_name=trust.note_name, exported_at=exported_at,
            records=count,
        )  # fmt: skip
        writer.write({"type": "trust_root", "trust_root": trust.to_json()})
        for note in notes:
            writer.write({"type": "checkpoint", "note": note})
        async for record, log_index in records:
            writer.write({"type": "record", "record": record, "log_index": log_index})
            written += 1
            if progress is not None:
                progress(written)
    finally:
        writer.close()
    return written
