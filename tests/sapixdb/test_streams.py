"""Live streams over every transport: replay then live, filters, fan-out, disconnects."""

from __future__ import annotations

import threading
import uuid

import anyio
import httpx
import orjson

from sapixdb import AsyncSapixClient, SapixClient, StreamEvent
from tests.sapixdb.server_process import ServerProcess


def _writer(db: SapixClient, name: str, start: int, count: int) -> threading.Thread:
    def run() -> None:
        for n in range(start, start + count):
            db.collection(name).write({"n": n})

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_replay_then_live_has_no_gap_or_duplicate(db: SapixClient, name: str) -> None:
    col = db.collection(name)
    first = col.write({"n": 0})
    for n in range(1, 5):
        col.write({"n": n})
    seen: list[int] = []
    stream = db.subscribe_agent(name, since=first.timestamp_hlc)
    writer: threading.Thread | None = None
    for event in stream:
        assert isinstance(event, StreamEvent)
        assert event.event_type == "record.written" and event.agent_id == name
        seen.append(event.payload["n"])
        if writer is None:
            # Writes race the replay: the seam must still be exact.
            writer = _writer(db, name, 5, 15)
        if len(seen) == 19:
            break
    stream.close()
    assert writer is not None
    writer.join()
    assert seen == list(range(1, 20))  # after `since` only, in order, once each


def test_since_zero_replays_the_whole_strand(db: SapixClient, name: str) -> None:
    written = [db.collection(name).write({"n": n}) for n in range(3)]
    stream = db.subscribe_agent(name, since=0)
    events = [next(stream) for _ in range(3)]
    stream.close()
    assert [e.record_id for e in events] == [w.id for w in written]
    assert [e.content_hash for e in events] == [w.hash for w in written]


def test_filter_field_keeps_only_records_with_that_field(db: SapixClient, name: str) -> None:
    col = db.collection(name)
    col.write({"other": 1})
    col.write({"amount": 5})
    col.write({"other": 2})
    col.write({"amount": 7})
    stream = db.subscribe_agent(name, since=0, filter_field="amount")
    events = [next(stream) for _ in range(2)]
    stream.close()
    assert [e.payload for e in events] == [{"amount": 5}, {"amount": 7}]


def test_global_stream_restricted_to_agents(db: SapixClient, name: str) -> None:
    wanted, other = name + "a", name + "b"
    stream = db.subscribe_global(agents=[wanted])
    received: list[StreamEvent] = []

    def consume() -> None:
        received.append(next(stream))

    thread = threading.Thread(target=consume)
    thread.start()
    # The subscription starts at "now"; keep writing until the consumer has its event.
    while thread.is_alive():
        db.collection(other).write({"skip": True})
        db.collection(wanted).write({"keep": True})
        thread.join(0.2)
    stream.close()
    assert received[0].agent_id == wanted and received[0].payload == {"keep": True}


async def test_several_async_subscribers_each_get_every_event(
    adb: AsyncSapixClient, name: str
) -> None:
    col = adb.collection(name)
    base = await col.write({"n": -1})
    results: dict[int, list[int]] = {}

    async def subscriber(index: int) -> None:
        got: list[int] = []
        stream = adb.subscribe_agent(name, since=base.timestamp_hlc)
        async for event in stream:
            got.append(event.payload["n"])
            if len(got) == 5:
                break
        await stream.aclose()
        results[index] = got

    async with anyio.create_task_group() as group:
        for index in range(3):
            group.start_soon(subscriber, index)
        for n in range(5):
            await col.write({"n": n})
    assert results == {i: [0, 1, 2, 3, 4] for i in range(3)}


def test_client_disconnect_mid_stream_leaves_server_working(server: ServerProcess) -> None:
    name = f"d{uuid.uuid4().hex[:12]}"
    with SapixClient(url=server.url) as db:
        for n in range(3):
            db.collection(name).write({"n": n})
        for _ in range(3):
            stream = db.subscribe_agent(name, since=0)
            assert next(stream).payload == {"n": 0}
            stream.close()  # drops the connection mid-stream
        path = f"/v1/agents/{name}/stream?since=0"
        with httpx.Client(base_url=server.url) as raw, raw.stream("GET", path) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    break  # leave with unread frames and an open subscription
        assert db.collection(name).write({"n": 3}).id
        assert [r.data["n"] for r in db.collection(name).latest()] == [3, 2, 1, 0]
        assert db.ping()


def test_server_sends_heartbeats_and_clients_skip_them(server: ServerProcess) -> None:
    name = f"h{uuid.uuid4().hex[:12]}"
    frames: list[tuple[str, object]] = []
    path = f"/v1/agents/{name}/stream"
    with (
        httpx.Client(base_url=server.url, timeout=10) as raw,
        raw.stream("GET", path) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                frames.append((str(event), orjson.loads(line.split(":", 1)[1])))
                if len(frames) == 2:
                    break
    assert frames == [("heartbeat", {}), ("heartbeat", {})]
    with SapixClient(url=server.url) as db:
        db.collection(name).write({"after": "heartbeats"})
        stream = db.subscribe_agent(name, since=0)
        assert next(stream).payload == {"after": "heartbeats"}  # heartbeats never surface
        stream.close()


def test_stream_on_a_bad_agent_name_is_an_error(db: SapixClient) -> None:
    import pytest

    from sapixdb import SapixError

    with pytest.raises(SapixError) as caught:
        next(db.subscribe_agent("bad/name", since=0))
    assert caught.value.status in (400, 404)
