"""The light client against a real service: batching, idempotency, the durable spool."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from decisiontrail_client import AsyncDecisionTrail, DecisionTrail, Redaction
from decisiontrail_client.sender import batch_key
from tests.integrations.conftest import Trail, start_trail
from tests.ports import free_port


def decision(agent: str, i: int) -> dict[str, object]:
    return {"agent": agent, "action": "answer", "kind": "llm_call", "run_id": f"{agent}-run-{i}",
            "input": {"question": f"q{i}"}, "output": f"a{i}"}  # fmt: skip


def test_records_reach_the_service_once_and_in_order(trail: Trail, tmp_path: Path) -> None:
    with DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool", batch_size=7) as client:
        keys = client.record_batch([decision("ordered", i) for i in range(25)])
        result = client.flush(timeout=60)
    assert result.complete and result.delivered == 25
    assert len(set(keys)) == 25
    records = trail.decisions("ordered")
    assert [r["decision"]["run_id"] for r in records] == [f"ordered-run-{i}" for i in range(25)]


def test_a_replayed_batch_is_recorded_once(trail: Trail, tmp_path: Path) -> None:
    """A crash after a batch reached the service but before its acknowledgement was noted
    leaves it in the spool: replaying it (here: two copies of the spool, replayed one after
    the other) sends the same batch under the same key, and it is recorded once."""
    dead = DecisionTrail(f"http://127.0.0.1:{free_port()}", trail.key,
                         spool_dir=tmp_path / "spool", flush_at_exit=None)  # fmt: skip
    dead.record_batch([decision("replayed", i) for i in range(12)])
    assert dead.flush(timeout=2).spooled == 12
    dead.close(timeout=0)
    shutil.copytree(tmp_path / "spool", tmp_path / "copy")
    for spool in ("spool", "copy"):
        with DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / spool) as client:
            assert client.flush(timeout=60).complete
    runs = [r["decision"]["run_id"] for r in trail.decisions("replayed")]
    assert sorted(runs) == sorted(f"replayed-run-{i}" for i in range(12))


def test_synchronous_mode_sends_before_returning(trail: Trail, tmp_path: Path) -> None:
    client = DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool", synchronous=True)
    client.record(decision("serverless", 0))
    assert [r["decision"]["output"] for r in trail.decisions("serverless")] == ["a0"]
    assert client.stats().complete
    client.close()


async def test_async_client(trail: Trail, tmp_path: Path) -> None:
    async with AsyncDecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool") as client:
        await client.record(decision("async-client", 0))
        result = await client.flush(timeout=60)
    assert result.complete
    assert len(trail.decisions("async-client")) == 1


def test_redaction_and_hook_run_before_sending(trail: Trail, tmp_path: Path) -> None:
    seen: list[str] = []

    def hook(record: dict[str, object]) -> dict[str, object]:
        seen.append(threading.current_thread().name)
        return {**record, "tags": ["hooked"]}

    with DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool", before_send=hook,
                       redaction=Redaction()) as client:  # fmt: skip
        client.record({"agent": "redacted", "action": "answer",
                       "input": "mail alice@example.com, card 4111 1111 1111 1111, "
                                "key sk-proj-abcdefghijklmnopqrstuvwx, call +44 20 7946 0958",
                       "metadata": {"auth": "Bearer abcdefghijklmnopqrstuvwxyz12"}})  # fmt: skip
        assert client.flush(timeout=60).complete
    (record,) = trail.decisions("redacted")
    text = record["decision"]["input"]
    for secret in ("alice@example.com", "4111", "sk-proj", "7946"):
        assert secret not in text
    assert "[REDACTED:email]" in text and "[REDACTED:card_number]" in text
    assert "[REDACTED:api_key]" in text and "[REDACTED:phone]" in text
    assert record["decision"]["metadata"]["auth"] == "[REDACTED:bearer_token]"
    assert record["decision"]["tags"] == ["hooked"]
    assert seen == ["decisiontrail-sender"]  # never the caller's thread


def test_invalid_record_is_rejected_alone(trail: Trail, tmp_path: Path) -> None:
    with DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool") as client:
        client.record_batch([decision("split", 0), {"agent": "split", "action": ""},
                             decision("split", 2)])  # fmt: skip
        result = client.flush(timeout=60)
    assert result.complete and result.rejected == 1
    assert sorted(r["decision"]["output"] for r in trail.decisions("split")) == ["a0", "a2"]


def test_a_wrong_key_is_reported_once_and_nothing_is_lost(
    trail: Trail, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    with DecisionTrail(trail.url, "dtk_wrong", spool_dir=spool, flush_at_exit=None) as client:
        client.record_batch([decision("wrong-key", i) for i in range(3)])
        result = client.flush(timeout=3)
        client.record(decision("wrong-key", 3))
        client.flush(timeout=1)
    assert not result.complete and result.spooled == 3
    refusals = [r for r in caplog.records if "refused the API key" in r.getMessage()]
    assert len(refusals) == 1
    # the right key, the same spool: the records arrive
    with DecisionTrail(trail.url, trail.key, spool_dir=spool) as client:
        assert client.flush(timeout=60).complete
    assert len(trail.decisions("wrong-key")) == 4


def test_spool_holds_records_while_nothing_listens(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = DecisionTrail(url, "dtk_x", spool_dir=tmp_path / "spool", flush_at_exit=None)
    client.record_batch([decision("down", i) for i in range(50)])
    result = client.flush(timeout=2)
    assert result.pending == 0 and result.spooled == 50 and not result.complete
    client.close(timeout=0)
    assert list((tmp_path / "spool").glob("seg-*.jsonl"))


def test_spool_bound_drops_new_records_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = DecisionTrail(url, None, spool_dir=tmp_path / "spool", max_spool_bytes=2000,
                           batch_size=1, flush_at_exit=None)  # fmt: skip
    client.record_batch([decision("bounded", i) for i in range(40)])
    result = client.flush(timeout=2)
    client.close(timeout=0)
    assert result.dropped > 0 and result.spooled + result.dropped == 40
    assert any("spool is full" in r.getMessage() for r in caplog.records)
    assert sum(p.stat().st_size for p in (tmp_path / "spool").glob("seg-*")) <= 2000


def test_batch_key_is_derived_from_record_keys() -> None:
    assert batch_key(["a", "b"]) == batch_key(["a", "b"]) != batch_key(["b", "a"])


@pytest.mark.slow
def test_service_killed_mid_run_every_decision_arrives_exactly_once(tmp_path: Path) -> None:
    trail = start_trail(tmp_path / "service")
    total = 3000
    try:
        client = DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool",
                               batch_size=50, flush_at_exit=None)  # fmt: skip
        for i in range(total):
            client.record(decision("killed", i))
            if i == 1000:
                time.sleep(0.3)  # some batches are in flight now
                trail.server.kill()
            if i == 2000:
                deadline = time.monotonic() + 60
                while client.stats().spooled == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert client.stats().spooled > 0  # the spool took over while it was down
                trail.server.start()
            time.sleep(0.0005 if i % 10 == 0 else 0)
        result = client.flush(timeout=180)
        assert result.complete, result
        client.close()
        records = trail.decisions("killed")
        runs = [r["decision"]["run_id"] for r in records]
        assert len(runs) == len(set(runs)) == total
        assert trail.verify()["ok"] is True
    finally:
        trail.server.stop()


def test_two_processes_replaying_one_spool_record_once(trail: Trail, tmp_path: Path) -> None:
    """A spool left behind is claimed by one replayer at a time; both finishing is harmless."""
    spool = tmp_path / "spool"
    dead = DecisionTrail(f"http://127.0.0.1:{free_port()}", trail.key, spool_dir=spool,
                         flush_at_exit=None)  # fmt: skip
    dead.record_batch([decision("shared-spool", i) for i in range(30)])
    dead.flush(timeout=2)
    dead.close(timeout=0)
    first = DecisionTrail(trail.url, trail.key, spool_dir=spool)
    second = DecisionTrail(trail.url, trail.key, spool_dir=spool)
    assert first.flush(timeout=60).complete and second.flush(timeout=60).complete
    first.close()
    second.close()
    assert len(trail.decisions("shared-spool")) == 30
    assert not list(spool.glob("seg-*"))


def test_http_errors_are_not_raised_into_the_application(tmp_path: Path) -> None:
    client = DecisionTrail("http://127.0.0.1:1", None, spool_dir=tmp_path / "s",
                           flush_at_exit=None)  # fmt: skip
    client.record({"agent": "a", "action": "b"})
    assert isinstance(client.flush(timeout=1).spooled, int)
    client.close(timeout=0)
    assert httpx  # the client's only dependency


def test_embedded_mode_writes_a_local_trail_without_a_service(tmp_path: Path) -> None:
    from decisiontrail_client.embedded import EmbeddedTransport

    transport = EmbeddedTransport(tmp_path / "trail")
    client = DecisionTrail(
        transport=transport, spool_dir=tmp_path / "spool", flush_at_exit=None, synchronous=True
    )  # one batch per call: the same keys both times
    for _ in range(2):  # the same runs twice: the same keys, recorded once
        client.record_batch([decision("notebook", i) for i in range(3)])
        assert client.flush(timeout=60).complete
    assert sorted(r["decision"]["output"] for r in transport.read("notebook")) == ["a0", "a1", "a2"]
    client.close()


def test_a_full_queue_spills_to_the_spool_and_the_hook_still_runs_on_the_sender(
    trail: Trail, tmp_path: Path
) -> None:
    threads: set[str] = set()

    def hook(record: dict[str, object]) -> dict[str, object]:
        threads.add(threading.current_thread().name)
        return {**record, "tags": ["hooked"]}

    spool = tmp_path / "spool"
    down = DecisionTrail(f"http://127.0.0.1:{free_port()}", trail.key, spool_dir=spool,
                         max_queue=5, before_send=hook, flush_at_exit=None)  # fmt: skip
    down.record_batch([decision("overflow", i) for i in range(60)])
    down.close(timeout=0)
    spooled = "".join(p.read_text() for p in spool.glob("seg-*.jsonl"))
    assert '"prepared":false' in spooled  # the caller spilled what the queue could not hold
    with DecisionTrail(trail.url, trail.key, spool_dir=spool, before_send=hook) as client:
        assert client.flush(timeout=60).complete
    records = [r["decision"] for r in trail.decisions("overflow")]
    assert sorted(r["run_id"] for r in records) == sorted(f"overflow-run-{i}" for i in range(60))
    assert all(r["tags"] == ["hooked"] for r in records)
    assert threads == {"decisiontrail-sender"}
