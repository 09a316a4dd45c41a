"""Preconditions and the hash chain under concurrent writers, threads and OS processes."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genesisdb import Client, PreconditionFailedError
from genesisdb.engine import Engine
from tests.genesisdb import race_worker

WORKERS = 8


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/race.db"
    return str(request.getfixturevalue("pg_url"))


def run_processes(target: Callable[..., None], *args: Any, workers: int = WORKERS) -> list[str]:
    # Create the store first: the race under test is between commits, not first opens.
    Engine.open(args[0]).close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(*args, barrier, results), daemon=True)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        return [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def test_is_subject_new_admits_exactly_one_of_eight_processes(store_url: str) -> None:
    outcomes = run_processes(race_worker.commit_guarded, store_url, "/race/one")
    assert sorted(outcomes) == ["412"] * (WORKERS - 1) + ["ok"]
    engine = Engine.open(store_url)
    try:
        assert len(list(engine.stream("/race"))) == 1
        assert engine.audit()["valid"] is True
    finally:
        engine.close()


def test_concurrent_processes_never_fork_the_chain(store_url: str) -> None:
    outcomes = run_processes(race_worker.commit_many, store_url, "/race/many", 15, workers=4)
    assert outcomes == ["ok"] * 4
    engine = Engine.open(store_url)
    try:
        events = list(engine.stream("/"))
        assert len(events) == 60
        for before, after in itertools.pairwise(events):
            assert after["predecessorhash"] == before["hash"]
            assert after["time"] > before["time"]
        report = engine.audit()
        assert report == {"valid": True, "events": 60, "firstInvalid": None, "errors": []}
    finally:
        engine.close()


async def test_is_subject_new_admits_one_of_eight_concurrent_clients(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/clients.db"
    clients = [Client({"api_url": url}) for _ in range(WORKERS)]
    event = {"source": "race", "subject": "/race/c", "type": "created", "data": {}}
    guard = [{"type": "isSubjectNew", "payload": {"subject": "/race/c"}}]
    try:
        outcomes = await asyncio.gather(
            *(client.commit_events([event], guard) for client in clients), return_exceptions=True
        )
    finally:
        for client in clients:
            await client.close()
    assert sum(not isinstance(item, BaseException) for item in outcomes) == 1
    assert sum(isinstance(item, PreconditionFailedError) for item in outcomes) == WORKERS - 1
