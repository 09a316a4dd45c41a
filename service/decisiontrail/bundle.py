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

import gzip
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from decisiontrail.record_checks import shared_checkers
from decisiontrail.signing import TrustRoot
from decisiontrail.verification import (
    CheckpointError,
    LogVerifier,
    SignedCheckpoint,
    VerificationReport,
    open_checkpoint,
    verify_in_chunks,
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
    items = read_bundle(path)
    header = next(items, None)
    if header is None or header.get("type") != "header" or header.get("format") != FORMAT:
        raise BundleError(f"not a {FORMAT} bundle")
    tenant, origin = str(header["tenant"]), str(header["origin"])
    bundled: TrustRoot | None = None
    notes: list[str] = []
    first: dict[str, Any] | None = None
    for item in items:
        kind = item["type"]
        if kind == "trust_root":
            bundled = TrustRoot.from_json(item["trust_root"])
        elif kind == "checkpoint":
            notes.append(str(item["note"]))
        elif kind == "record":
            first = item
            break
    verifier = _start(tenant, origin, trust or bundled, notes, trusted_checkpoint)
    if first is not None:
        records = _records(itertools.chain([first], items))
        checkers = shared_checkers() if workers else None
        verify_in_chunks(verifier, records, checkers=checkers, progress=progress)
    return BundleReport(verifier.finish(), tenant, trust is None, int(header.get("records", 0)))


def _records(items: Iterator[dict[str, Any]]) -> Iterator[tuple[Any, int | None]]:
    """The record items' records and log indexes (other items after the first record are
    ignored, as the format puts them before the records)."""
    for item in items:
        if item["type"] == "record":
            log_index = item.get("log_index")
            yield item.get("record"), log_index if isinstance(log_index, int) else None


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
