"""Backup and restore: a restored store has the same events, chain and erasure state."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from genesisdb import BadRequestError, ConflictError
from genesisdb.engine import Engine


@pytest.fixture
def source(tmp_path: Path) -> Engine:
    engine = Engine.open(f"sqlite:///{tmp_path}/a.db")
    engine.commit(
        [
            {"source": "s", "subject": "/p/1", "type": "t", "data": {"name": "Ann"},
             "options": {"storeDataAsReference": True}},
            {"source": "s", "subject": "/p/2", "type": "t", "data": {"name": "Bob"},
             "options": {"storeDataAsReference": True}},
            {"source": "s", "subject": "/q", "type": "u", "data": {"n": 1}},
        ]
    )  # fmt: skip
    engine.erase("/p/1")
    return engine


def test_restore_rebuilds_the_same_store(source: Engine, tmp_path: Path) -> None:
    backup = list(source.backup())
    assert backup[0]["reference"]["salt"] is None and backup[1]["reference"]["salt"]
    target = Engine.open(f"sqlite:///{tmp_path}/b.db")
    try:
        assert target.restore(backup) == 3
        assert list(target.stream("/")) == list(source.stream("/"))
        assert target.audit()["valid"] is True
        assert target.subjects() == ["/p/1", "/p/2", "/q"] and target.types() == ["t", "u"]
        assert target.erase("/p") == 1  # /p/2 was still erasable, /p/1 already erased
        with pytest.raises(ConflictError):
            target.restore(backup)
    finally:
        target.close()
        source.close()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b[2]["data"].update(n=2),
        lambda b: b[1]["data"].update(name="Eve"),
        lambda b: b.pop(1),
        lambda b: b[0].update(time="2000-01-01T00:00:00Z"),
        lambda b: b[2].update(predecessorhash="0" * 64),
    ],
    ids=["data", "referenced-data", "missing-event", "time", "link"],
)
def test_a_tampered_backup_is_refused(source: Engine, tmp_path: Path, tamper: object) -> None:
    backup = copy.deepcopy(list(source.backup()))
    tamper(backup)  # type: ignore[operator]
    target = Engine.open(f"sqlite:///{tmp_path}/c.db")
    try:
        with pytest.raises(BadRequestError):
            target.restore(backup)
        assert list(target.stream("/")) == []
    finally:
        target.close()
        source.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def embedded_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/root.db"
    return str(request.getfixturevalue("pg_url"))


def test_erase_of_the_root_erases_every_reference(embedded_url: str) -> None:
    engine = Engine.open(embedded_url)
    try:
        engine.commit(
            [
                {"source": "s", "subject": "/a/1", "type": "t", "data": {"k": "v"},
                 "options": {"storeDataAsReference": True}},
                {"source": "s", "subject": "/b", "type": "t", "data": {"k": "w"},
                 "options": {"storeDataAsReference": True}},
                {"source": "s", "subject": "/c", "type": "t", "data": {"k": "x"}},
            ]
        )  # fmt: skip
        assert engine.erase("/") == 2
        assert [event["data"] for event in engine.stream("/")] == [
            {"k": ""}, {"k": ""}, {"k": "x"}
        ]  # fmt: skip
        assert engine.audit()["valid"] is True
    finally:
        engine.close()
