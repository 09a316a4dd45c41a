"""End to end over HTTP against a real server process (embedded stores)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.server_process import ServerProcess, make_server

DECISION = {"agent": "bot", "action": "answer", "kind": "llm_call", "input": "hi Alice",
            "personal": ["input"]}  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = make_server(tmp_path)
    process.start()
    yield process
    process.stop()


def api_key(server: ServerProcess, *scopes: str, tenant: str = "default") -> dict[str, str]:
    args = ["keys", "create", "--tenant", tenant]
    for scope in scopes:
        args += ["--scope", scope]
    text = next(line for line in server.cli(*args).splitlines() if line.startswith("dtk_"))
    return {"Authorization": f"Bearer {text}"}


async def test_live_stream_replays_then_follows(server: ServerProcess) -> None:
    headers = api_key(server, "ingest", "read")
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        for i in range(3):
            await client.post("/v1/decisions", json={**DECISION, "action": f"a{i}"})
        seen: list[int] = []

        async def follow() -> None:
            async with client.stream("GET", "/v1/decisions/stream?after=0") as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        seen.append(json.loads(line[5:])["log_index"])
                        if len(seen) == 4:
                            return

        task = asyncio.create_task(follow())
        while len(seen) < 2:
            await asyncio.sleep(0.05)
        for i in range(2):
            await client.post("/v1/decisions", json={**DECISION, "action": f"live{i}"})
        await asyncio.wait_for(task, timeout=30)
    assert seen == [1, 2, 3, 4]


def test_crash_loses_no_acknowledged_decision(server: ServerProcess) -> None:
    headers = api_key(server, "ingest", "read", "audit")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                try:
                    response = client.post(
                        "/v1/decisions",
                        json={**DECISION, "agent": f"bot{worker}", "metadata": {"i": i}},
                        headers={"Idempotency-Key": f"w{worker}-{i}"},
                    )  # fmt: skip
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged.append(response.json()["id"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 150:
        assert time.monotonic() < deadline, "the writers got no acknowledgements"
        threading.Event().wait(0.02)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    server.start()
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for decision_id in acknowledged:
            assert client.get(f"/v1/decisions/{decision_id}").status_code == 200
        report = client.post("/v1/verify", json={}).json()
    assert report["ok"], report
    assert report["records_checked"] >= len(acknowledged)
    assert len(set(acknowledged)) == len(acknowledged)


def test_against_the_compatible_servers_over_http(tmp_path: Path) -> None:
    """The second configuration: both SDKs talk HTTP to real SapixDB / Genesis DB servers."""
    from tests.genesisdb.gdb_server import TOKENS
    from tests.genesisdb.gdb_server import start_server as start_genesis
    from tests.sapixdb.server_process import start_server as start_sapix

    (tmp_path / "genesis").mkdir()
    (tmp_path / "sapix").mkdir()
    genesis = start_genesis(tmp_path / "genesis")
    sapix = start_sapix(tmp_path / "sapix")
    service = make_server(
        tmp_path, genesisdb_url=genesis.url, genesisdb_token=TOKENS["admin"], sapixdb_url=sapix.url
    )
    try:
        service.start()
        headers = api_key(service, "ingest", "read", "audit", "erase")
        with httpx.Client(base_url=service.url, headers=headers, timeout=30) as client:
            one = client.post("/v1/decisions", json={**DECISION, "run_id": "r1"})
            assert one.status_code == 201, one.text
            batch = [
                {**DECISION, "action": f"b{i}", "run_id": f"r{i + 2}", "parent_run_id": "r1",
                 "data_subjects": ["bob"]}
                for i in range(20)
            ]  # fmt: skip
            many = client.post("/v1/decisions/batch", json=batch)
            assert many.status_code == 201, many.text
            listed = client.get("/v1/decisions", params={"limit": 100}).json()["data"]
            assert len(listed) == 21
            tree = client.get(f"/v1/decisions/{one.json()['id']}/provenance").json()
            assert len(tree["run"]["descendants"]) == 20
            erased = client.delete("/v1/data-subjects/bob")
            assert erased.status_code == 200, erased.text
            report = client.post("/v1/verify", json={}).json()
            assert report["ok"], report
            assert report["stores"]["decisions_compared"] == 22  # the erasure is a decision too
        # The decisions really are in the servers' files, not in a local embedded store.
        assert not (service.data_dir / "sapixdb.db").exists()
        assert not (service.data_dir / "genesisdb.db").exists()
        assert (tmp_path / "sapix" / "s.db").stat().st_size > 0
    finally:
        service.stop()
        sapix.stop()
        genesis.stop()


def test_the_data_folder_and_its_files_are_private(server: ServerProcess) -> None:
    headers = api_key(server, "ingest")
    answer = httpx.post(f"{server.url}/v1/decisions", json=DECISION, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text
    assert server.data_dir.stat().st_mode & 0o777 == 0o700
    found = [path for path in server.data_dir.rglob("*")]
    assert any(path.name == "genesisdb.db" for path in found)
    for path in found:
        expected = 0o700 if path.is_dir() else 0o600
        assert path.stat().st_mode & 0o777 == expected, path


async def test_a_hundred_streams_share_one_feed_and_more_are_refused(tmp_path: Path) -> None:
    server = make_server(tmp_path, max_streams="100")
    server.start()
    try:
        headers = api_key(server, "ingest", "read")
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, timeout=60, limits=limits
        ) as client:
            first = await client.post("/v1/decisions", json={**DECISION, "action": "a0"})
            assert first.status_code == 201, first.text
            async with contextlib.AsyncExitStack() as streams:
                lines = []
                for _ in range(100):
                    response = await streams.enter_async_context(
                        client.stream("GET", "/v1/decisions/stream?after=-1")
                    )
                    assert response.status_code == 200
                    lines.append(response.aiter_lines())

                async def next_index(stream: AsyncIterator[str]) -> int:
                    async for line in stream:
                        if line.startswith("data:"):
                            return int(json.loads(line[5:])["log_index"])
                    raise AssertionError("the stream ended")

                # Each stream replayed the first decision: all hundred are subscribed.
                replayed = await asyncio.wait_for(
                    asyncio.gather(*(next_index(s) for s in lines)), timeout=120
                )
                assert replayed == [0] * 100
                refused = await client.get("/v1/decisions/stream")
                assert refused.status_code == 503, refused.text
                assert refused.json()["code"] == "too_many_streams"
                assert int(refused.headers["Retry-After"]) >= 1
                # Ingest goes on while they are open, and every stream gets the decision.
                second = await client.post("/v1/decisions", json={**DECISION, "action": "a1"})
                assert second.status_code == 201, second.text
                live = await asyncio.wait_for(
                    asyncio.gather(*(next_index(s) for s in lines)), timeout=120
                )
                assert live == [1] * 100
    finally:
        server.stop()
