"""The promises issue 14 found broken, each walked on the path that broke it: unknown commit
outcomes, erasure racing a replica, fresh heads on replicas, Idempotency-Key semantics."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from decisiontrail import verification
from decisiontrail.ledger import Ledger, PreparedDecision
from decisiontrail.ledger.failures import LegalHoldError
from genesisdb import Client, NetworkError
from tests.service import rawdb
from tests.service.inprocess import DECISION, Service
from tests.service.test_ledger import all_records, close_ledger, decision, open_ledger
from tests.service.test_ledger import ledger as ledger  # the fixture


def lose_answers(ledger: Ledger, *, commit_first: bool, times: int = 1) -> list[int]:
    """Make the next ``times`` commits lose their connection: after the store committed
    (``commit_first``) or before it saw them. Returns a list counting the commits lost."""
    real = ledger.genesis.commit_events
    lost: list[int] = []

    async def flaky(events: Any, preconditions: Any = None) -> Any:
        if len(lost) < times and any("/agents/" in e["subject"] for e in events):
            lost.append(1)
            if commit_first:
                await real(events, preconditions)
            raise NetworkError("connection reset")
        return await real(events, preconditions)

    ledger.genesis.commit_events = flaky  # type: ignore[method-assign]
    return lost


async def live_records(ledger: Ledger) -> set[str]:
    """SapixDB records not tombstoned."""
    recent = await ledger.provenance.recent(before_hlc=None, limit=1000)
    return {r.record_id for r in recent} - await ledger.provenance.deleted_ids()


async def record_concurrently(ledger: Ledger, n: int) -> list[Any]:
    calls = [ledger.writer.record("acme", [decision(f"bot{i}", i)]) for i in range(n)]
    return await asyncio.gather(*calls, return_exceptions=True)


@pytest.mark.parametrize("commit_first", [True, False], ids=["landed", "not-landed"])
async def test_an_unknown_outcome_of_a_group_is_resolved_before_any_retry(
    ledger: Ledger, commit_first: bool
) -> None:
    lost = lose_answers(ledger, commit_first=commit_first)
    results = await record_concurrently(ledger, 2)
    assert lost == [1]
    assert not [r for r in results if isinstance(r, BaseException)]
    records = await all_records(ledger, "acme")
    assert len(records) == 2  # once each: never doubled
    answered = {r[0].record["id"] for r in results}
    assert answered == {r["id"] for r in records}
    assert len(await live_records(ledger)) == 2  # SapixDB: a failed attempt left nothing live


async def test_a_lone_request_whose_commit_landed_is_answered_as_recorded(
    ledger: Ledger,
) -> None:
    lose_answers(ledger, commit_first=True)
    receipts = await ledger.writer.record("acme", [decision("a", 0)])
    assert [r["id"] for r in await all_records(ledger, "acme")] == [receipts[0].record["id"]]


async def test_a_lone_request_whose_commit_did_not_land_fails_and_leaves_nothing(
    ledger: Ledger,
) -> None:
    lose_answers(ledger, commit_first=False)
    with pytest.raises(NetworkError):
        await ledger.writer.record("acme", [decision("a", 0)])
    assert await all_records(ledger, "acme") == []
    assert await live_records(ledger) == set()


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where two replicas share their Genesis DB: one SQLite file, or one PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    url: str = request.getfixturevalue("pg_url")
    return url


async def test_a_replica_proves_what_another_replica_wrote(
    tmp_path: Path, shared_store: str
) -> None:
    location = shared_store
    writer = open_ledger(tmp_path, Client({"api_url": location}))
    reader = open_ledger(tmp_path, Client({"api_url": location}))
    try:
        await reader.writer.record("acme", [decision("r", 0)])  # the reader's head: size 1
        written = await writer.writer.record("acme", [decision("w", i) for i in range(3)])
        size, proof = await reader.tree.inclusion_proof("acme", written[-1].log_index)
        assert size == 4 and proof
        checkpoint = await reader.tree.checkpoint("acme")
        assert checkpoint.size == 4
    finally:
        await close_ledger(writer)
        await close_ledger(reader)


def about(subject: str, i: int) -> PreparedDecision:
    body = {"agent": "bot", "action": f"step {i}", "data_subjects": [subject]}
    return PreparedDecision(body, ["data_subjects"])


async def test_erasure_on_one_replica_reaches_what_another_records_next(
    tmp_path: Path, shared_store: str
) -> None:
    location = shared_store
    eraser = open_ledger(tmp_path, Client({"api_url": location}))
    other = open_ledger(tmp_path, Client({"api_url": location}))
    try:
        await other.writer.record("acme", [about("carol", 0)])  # ``other`` caches her key
        await eraser.subjects.erase_subject("acme", "carol")
        later = await other.writer.record("acme", [about("carol", 1)])
        assert await other.reads.personal_values("acme", later[0].record["id"]) is not None
        ids, _ = await eraser.subjects.erase_subject("acme", "carol")
        assert later[0].record["id"] in ids
        assert await other.reads.personal_values("acme", later[0].record["id"]) is None
    finally:
        await close_ledger(eraser)
        await close_ledger(other)


async def test_idempotency_keys_follow_the_ietf_draft(service: Service) -> None:
    writer = await service.key("acme")
    url = "/v1/decisions"
    empty = await service.client.post(url, json=DECISION, headers={**writer, "Idempotency-Key": ""})
    assert empty.status_code == 400, empty.text
    bad = [*((k.encode(), v.encode()) for k, v in writer.items())]
    bad.append((b"Idempotency-Key", "café".encode()))  # not visible ASCII
    assert (await service.client.post(url, json=DECISION, headers=bad)).status_code == 400
    keyed = {**writer, "Idempotency-Key": '"order-1"'}
    first = await service.client.post(url, json=DECISION, headers=keyed)
    assert first.status_code == 201, first.text
    counted = service.state.metrics.decisions.labels(DECISION["agent"], DECISION["kind"])
    before = counted._value.get()
    again = await service.client.post(url, json=DECISION, headers=keyed)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert counted._value.get() == before  # a replay is not a new decision
    other = await service.client.post(url, json={**DECISION, "action": "x"}, headers=keyed)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert len([r async for r in service.state.ledger.reads.records("acme")]) == 1


async def test_a_hold_placed_while_an_erasure_starts_is_respected(
    tmp_path: Path, shared_store: str
) -> None:
    location = shared_store
    eraser = open_ledger(tmp_path, Client({"api_url": location}))
    holder = open_ledger(tmp_path, Client({"api_url": location}))
    try:
        recorded = await eraser.writer.record("acme", [about("dave", 0)])
        await holder.subjects.set_legal_hold("acme", "dave", placed=False)  # a hold history
        read = eraser.genesis.stream_events
        placed: list[str] = []

        async def hold_placed_right_after(subject: str, *args: Any) -> Any:
            found = await read(subject, *args)
            if subject.endswith("/hold") and not placed:
                placed.append(subject)  # another replica places a hold right now
                await holder.subjects.set_legal_hold("acme", "dave", placed=True)
            return found

        eraser.genesis.stream_events = hold_placed_right_after  # type: ignore[method-assign,assignment]
        with pytest.raises(LegalHoldError):
            await eraser.subjects.erase_subject("acme", "dave")
        assert placed
        values = await holder.reads.personal_values("acme", recorded[0].record["id"])
        assert values is not None  # nothing was erased under the hold
    finally:
        await close_ledger(eraser)
        await close_ledger(holder)


async def test_reads_write_nothing_and_store_errors_are_503(service: Service) -> None:
    key = await service.key("acme")
    receipt = await service.record(key, data_subjects=["erin"])
    await service.state.ledger.tree.issue_checkpoint("acme")
    before = rawdb.stored_rows(service.state.settings.data_dir)
    issued = dict(service.state.metrics._checkpoints)  # when each tenant's was issued
    for url in [
        "/v1/checkpoints/latest",
        f"/v1/decisions/{receipt['id']}/proof",
        f"/v1/decisions/{receipt['id']}/provenance",
    ]:
        assert (await service.client.get(url, headers=key)).status_code == 200
    await service.record(key)  # the log grows: a read now signs a checkpoint it does not store
    assert (await service.client.get("/v1/checkpoints/latest", headers=key)).json()["size"] == 2
    after = rawdb.stored_rows(service.state.settings.data_dir)
    genesis = "genesisdb.db:ls_entries"
    assert after[genesis] > before[genesis]  # the second decision's events, nothing more:
    await service.client.get("/v1/checkpoints/latest", headers=key)
    assert rawdb.stored_rows(service.state.settings.data_dir) == after
    assert service.state.metrics._checkpoints == issued  # reads issue none

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise NetworkError("cannot reach the Genesis DB server")

    service.state.genesis.stream_events = unreachable  # type: ignore[method-assign]
    for url in [f"/v1/decisions/{receipt['id']}", "/v1/checkpoints/1"]:
        answer = await service.client.get(url, headers=key)
        assert answer.status_code == 503 and answer.json()["code"] == "store_unavailable"


async def test_a_checkpoint_signed_by_a_key_no_longer_trusted_is_named(service: Service) -> None:
    key = await service.key("acme")
    await service.record(key)
    await service.state.ledger.tree.issue_checkpoint("acme")
    service.state.keyring.trust.keys.clear()  # its key is no longer trusted
    answer = await service.client.get("/v1/checkpoints/1", headers=key)
    assert answer.status_code == 409 and answer.json()["code"] == "untrusted_checkpoint"


async def test_verification_and_reports_check_records_off_the_event_loop(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await service.key("acme")
    for i in range(3):
        await service.record(key, action=f"step {i}")
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    # Each record's own checks (hash, signature, leaf) are the CPU-bound part: a worker
    # thread for a short log, worker processes past it; chain and tree checks are cheap.
    check = verification.check_records

    def watched(records: list[Any], trust: Any) -> Any:
        threads.add(threading.get_ident())
        return check(records, trust)

    monkeypatch.setattr(verification, "check_records", watched)
    whole_lists: list[str] = []
    listed = service.state.genesis.stream_events

    async def stream_events(subject: str, *args: Any) -> Any:
        if subject.endswith("/agents"):
            whole_lists.append(subject)  # the whole log as one list in memory
        return await listed(subject, *args)

    monkeypatch.setattr(service.state.genesis, "stream_events", stream_events)
    report = await service.client.post("/v1/verify", json={}, headers=key)
    assert report.json()["ok"] and report.json()["records_checked"] == 3
    compliance = await service.client.get("/v1/reports/compliance?format=json", headers=key)
    assert compliance.status_code == 200 and compliance.json()["report"]["verification_ok"]
    assert threads and loop_thread not in threads
    assert whole_lists == []


async def test_an_erasure_between_a_key_look_up_and_the_commit_is_caught(
    tmp_path: Path, shared_store: str
) -> None:
    eraser = open_ledger(tmp_path, Client({"api_url": shared_store}))
    other = open_ledger(tmp_path, Client({"api_url": shared_store}))
    try:
        await eraser.writer.record("acme", [about("frank", 0)])
        look_up = other.subjects.look_up
        erased: list[int] = []

        async def erased_right_after(tenant: str, subject_ids: Any) -> Any:
            found = await look_up(tenant, subject_ids)
            if not erased:  # the key was found; now another replica erases the subject
                erased.append(1)
                await eraser.subjects.erase_subject("acme", "frank")
            return found

        other.subjects.look_up = erased_right_after  # type: ignore[method-assign]
        later = await other.writer.record("acme", [about("frank", 1)])
        assert erased
        ids, _ = await eraser.subjects.erase_subject("acme", "frank")
        assert later[0].record["id"] in ids
        assert await other.reads.personal_values("acme", later[0].record["id"]) is None
    finally:
        await close_ledger(eraser)
        await close_ledger(other)


async def test_an_erasure_cut_short_is_completed_by_running_it_again(ledger: Ledger) -> None:
    recorded = [(await ledger.writer.record("acme", [about("gina", i)]))[0] for i in range(3)]
    real = ledger.genesis.erase_data
    calls: list[str] = []

    async def crashes_on_the_second(subject: str) -> int:
        calls.append(subject)
        if len(calls) == 2:
            raise NetworkError("the service went away")
        return await real(subject)

    ledger.genesis.erase_data = crashes_on_the_second  # type: ignore[method-assign]
    with pytest.raises(NetworkError):
        await ledger.subjects.erase_subject("acme", "gina")
    ledger.genesis.erase_data = real  # type: ignore[method-assign]
    ids, _ = await ledger.subjects.erase_subject("acme", "gina")
    assert sorted(ids) == sorted(r.record["id"] for r in recorded)
    for receipt in recorded:
        assert await ledger.reads.personal_values("acme", receipt.record["id"]) is None


async def test_a_replica_that_missed_a_rotation_names_new_subjects_in_the_new_epoch(
    tmp_path: Path, shared_store: str
) -> None:
    eraser = open_ledger(tmp_path, Client({"api_url": shared_store}))
    other = open_ledger(tmp_path, Client({"api_url": shared_store}))
    try:
        hank = await other.writer.record("acme", [about("hank", 0)])  # ``other``: epoch 0
        await eraser.writer.record("acme", [about("ivy", 0)])
        await eraser.subjects.erase_subject("acme", "ivy")  # rotates to epoch 1
        assert [e.number for e in await eraser.subjects.epochs.live("acme")] == [1]
        judy = await other.writer.record("acme", [about("judy", 0)])  # still thinks epoch 0
        assert await eraser.subjects.subject_decisions("acme", "judy") == [judy[0].record["id"]]
        assert await eraser.subjects.subject_decisions("acme", "hank") == [hank[0].record["id"]]
        ids, _ = await eraser.subjects.erase_subject("acme", "judy")
        assert ids == [judy[0].record["id"]]
        assert await other.reads.personal_values("acme", judy[0].record["id"]) is None
        assert await other.reads.personal_values("acme", hank[0].record["id"]) is not None
    finally:
        await close_ledger(eraser)
        await close_ledger(other)


async def test_an_erasure_cut_short_is_completed_by_the_next_rotation(ledger: Ledger) -> None:
    kim = await ledger.writer.record("acme", [about("kim", 0)])
    await ledger.writer.record("acme", [about("lee", 0)])
    real = ledger.genesis.erase_data

    async def crash(subject: str) -> int:
        raise NetworkError("the service went away")

    ledger.genesis.erase_data = crash  # type: ignore[method-assign]
    with pytest.raises(NetworkError):  # claimed, nothing erased yet
        await ledger.subjects.erase_subject("acme", "kim")
    ledger.genesis.erase_data = real  # type: ignore[method-assign]
    await ledger.subjects.erase_subject("acme", "lee")  # its rotation meets kim's claimed key
    assert await ledger.reads.personal_values("acme", kim[0].record["id"]) is None
    assert await ledger.subjects.subject_keys("acme", "kim", erasing=True) == []
