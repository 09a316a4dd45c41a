"""After erasure, someone holding the whole data directory (database files, WAL, the subject
pepper) tries to tie the erased person to anything: by the id in clear, by the pepper's HMAC of
it, by the HMAC under every subject secret still readable. Nothing may match, and the service
itself, opened on those files, finds nothing about the person (issue 14, defect 3)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path

from decisiontrail.config import Settings
from decisiontrail.state import ServiceState
from tests.service.inprocess import DECISION, running

ERASED, KEPT = "carol@example.com", "dave@example.com"


def every_byte(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(data_dir.rglob("*")) if path.is_file())


def test_an_erased_subject_cannot_be_reidentified_from_the_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async def record_and_erase() -> None:
        async with running(data_dir) as service:
            key = await service.key("acme")
            for subject in [ERASED, KEPT, ERASED]:
                body = {**DECISION, "data_subjects": [subject]}
                answer = await service.client.post("/v1/decisions", json=body, headers=key)
                assert answer.status_code == 201, answer.text
            erased = await service.client.delete(f"/v1/data-subjects/{ERASED}", headers=key)
            assert erased.status_code == 200, erased.text
            assert len(erased.json()["decisions"]) == 2

    asyncio.run(record_and_erase())

    async def look() -> tuple[list[bytes], list[str], list[str]]:
        state = await ServiceState.open(Settings(data_dir=data_dir))
        try:
            subjects = state.ledger.subjects
            secrets = [e.secret for e in await subjects.epochs.live("acme")]
            found = await subjects.subject_decisions("acme", ERASED)
            kept = await subjects.subject_decisions("acme", KEPT)
            return [subjects.pepper, *secrets], found, kept
        finally:
            await state.close()

    secrets, found, kept = asyncio.run(look())
    assert found == [] and len(kept) == 1  # the service finds nothing; the other subject stays
    on_disk = every_byte(data_dir)
    assert ERASED.encode() not in on_disk and KEPT.encode() in on_disk
    for secret in secrets:
        name = hmac.new(secret, ERASED.encode(), hashlib.sha256).hexdigest()
        assert name.encode() not in on_disk
