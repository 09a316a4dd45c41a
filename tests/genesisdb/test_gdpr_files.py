"""GDPR erasure: erased values leave the database files, not just the API's answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest

from genesisdb.engine import Engine


def files_containing(marker: bytes, paths: Iterable[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_file():
            try:
                if marker in path.read_bytes():
                    found.append(path)
            except OSError:  # a file PostgreSQL removed while we looked
                continue
    return found


def commit_personal(engine: Engine, marker: str) -> None:
    engine.commit(
        [
            {
                "source": "io.test",
                "subject": "/person/1",
                "type": "person.registered",
                "data": {"name": marker, "contact": {"email": f"{marker}@example.com"}},
                "options": {"storeDataAsReference": True},
            },
            {"source": "io.test", "subject": "/person/1/audit", "type": "note", "data": {"n": 1}},
        ]
    )


def check_erased(engine: Engine) -> None:
    events = list(engine.stream("/person/1"))
    assert [event["data"] for event in events] == [
        {"name": "", "contact": {"email": ""}},
        {"n": 1},
    ]
    assert events[1]["predecessorhash"] == events[0]["hash"]
    assert engine.audit()["valid"] is True


def test_sqlite_files_lose_the_erased_values(tmp_path: Path) -> None:
    marker = f"Personal{uuid.uuid4().hex}"
    database = tmp_path / "g.db"
    engine = Engine.open(f"sqlite:///{database}")
    try:
        commit_personal(engine, marker)
        files = [database, Path(f"{database}-wal")]
        assert files_containing(marker.encode(), files), "the marker should be stored first"
        assert engine.erase("/person") == 1
        check_erased(engine)
    finally:
        engine.close()
    assert files_containing(marker.encode(), tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_postgres_files_lose_the_erased_values(pg_cluster: object, pg_url: str) -> None:
    data_dir: Path = pg_cluster.data_dir  # type: ignore[attr-defined]
    marker = f"Personal{uuid.uuid4().hex}"
    engine = Engine.open(pg_url)
    try:
        commit_personal(engine, marker)
        wal = list((data_dir / "pg_wal").rglob("*"))
        assert files_containing(marker.encode(), wal), "the marker should be in the WAL first"
        assert engine.erase("/person/1") == 1
        check_erased(engine)
    finally:
        engine.close()
    paths = [*(data_dir / "base").rglob("*"), *(data_dir / "pg_wal").rglob("*")]
    assert files_containing(marker.encode(), paths) == []
