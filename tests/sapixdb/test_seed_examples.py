"""Every example of the seed document (``seed_examples``) runs as printed, on every target.

The targets: the embedded SDK on SQLite and on PostgreSQL, and the compatible server on SQLite
and on PostgreSQL over HTTP. Only the URL in an example is replaced by the target's. The
FastAPI example runs under ``TestClient`` with and without a ``with`` block (without one, each
request runs on an event loop of its own), and its module-level client is also used from
several ``asyncio.run`` in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sapixdb import AsyncSapixClient, Record, SapixClient, SapixError, StreamEvent
from tests.sapixdb import seed_examples as ex
from tests.sapixdb.server_process import ServerProcess

TARGETS = [
    "embedded-sqlite",
    pytest.param("embedded-postgres", marks=pytest.mark.postgres),
    "server-sqlite",
    pytest.param("server-postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=TARGETS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    target = str(request.param)
    if target == "embedded-sqlite":
        return f"sqlite:///{tmp_path}/seed.db"
    if target == "embedded-postgres":
        return str(request.getfixturevalue("pg_url"))
    served: ServerProcess = request.getfixturevalue(
        "server" if target == "server-sqlite" else "pg_server"
    )
    return served.url


#: A safety net, not a measurement: a live stream that saw nothing by then fails the test.
STREAM_TIMEOUT = 120.0


class ExampleDone(Exception):
    """Raised by the reader's code we supply, to end an example's endless loop."""


class Namespace(dict[str, Any]):
    """An example's globals, with ``print`` recorded; closes every client it made."""

    def __init__(self, url: str) -> None:
        super().__init__(__name__="seed_example")
        self.url = url
        self.printed: list[tuple[Any, ...]] = []
        self["print"] = lambda *args: self.printed.append(args)

    def run(self, example: str) -> None:
        code = example.replace(ex.SEED_URL, self.url)
        exec(compile(code, "<seed example>", "exec"), self)

    def close(self) -> None:
        for value in list(self.values()):
            if isinstance(value, SapixClient):
                value.close()
            elif isinstance(value, AsyncSapixClient):
                asyncio.run(value.aclose())


@pytest.fixture
def names(url: str) -> Iterator[Namespace]:
    namespace = Namespace(url)
    yield namespace
    namespace.close()


@contextlib.contextmanager
def writing(url: str, write: Callable[[SapixClient], None]) -> Iterator[None]:
    """Write in the background until the block ends (live streams start at "now")."""
    stop = threading.Event()

    def run() -> None:
        with SapixClient(url=url) as db:
            while not stop.is_set():
                # A write refused under load (a busy store, 503) is retried: a writer that
                # died would leave a live stream waiting for ever.
                with contextlib.suppress(SapixError):
                    write(db)
                time.sleep(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_quick_start(names: Namespace) -> None:
    names.run(ex.QUICK_START)
    record = names["record"]
    assert names.printed == [(True,), (record.id,), (record.hash,)]
    assert any(p.id == record.id for p in names["products"])
    assert names["shirts"] == []  # nothing has a category yet
    assert names["snapshot"] == []  # nothing was written a day ago


def test_async_client(names: Namespace, url: str) -> None:
    names.run(ex.ASYNC_CLIENT)
    with SapixClient(url=url) as db:
        assert db.collection("products").find_one({"name": "T-Shirt", "price": 29.99})


def _exercise_store_api(client: TestClient) -> None:
    created = client.post("/products", json={"name": "Hoodie", "price": 49.0, "category": "hood"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "hash", "timestamp"}
    product = client.get(f"/products/{body['id']}")
    assert product.json() == {
        "id": body["id"],
        "name": "Hoodie",
        "price": 49.0,
        "stock": 0,
        "category": "hood",
    }
    assert client.get("/products/" + "0" * 64).status_code == 404
    listed = client.get("/products", params={"category": "hood"}).json()
    assert listed[0]["id"] == body["id"]
    assert body["id"] in [p["id"] for p in client.get("/products").json()]


@pytest.mark.parametrize("with_block", [True, False], ids=["with", "without-with"])
def test_fastapi_integration(names: Namespace, with_block: bool) -> None:
    names.run(ex.FASTAPI)
    if with_block:
        with TestClient(names["app"]) as client:
            _exercise_store_api(client)
            _exercise_store_api(client)
    else:
        client = TestClient(names["app"])  # as FastAPI's testing docs show: a loop per request
        _exercise_store_api(client)
        _exercise_store_api(client)


def test_the_module_level_client_serves_one_asyncio_run_after_another(names: Namespace) -> None:
    names.run(ex.FASTAPI)
    db: AsyncSapixClient = names["db"]

    async def write_and_read(n: int) -> Record:
        written = await db.collection("runs").write({"n": n})
        return await db.collection("runs").get(written.id)

    assert [asyncio.run(write_and_read(n)).data for n in range(4)] == [{"n": n} for n in range(4)]


def test_time_travel(names: Namespace) -> None:
    names.run(ex.QUICK_START)
    names.run(ex.TIME_TRAVEL)
    assert names["snapshot"] == []  # no order existed 30 minutes ago


def test_graph(names: Namespace) -> None:
    names.run(ex.QUICK_START)
    db: SapixClient = names["db"]
    names["customer"] = customer = db.collection("customers").write({"name": "Alice"})
    names["product"] = product = db.collection("products").write({"sku": "MUG-1"})
    names["order"] = order = db.collection("orders").write({"customer_id": customer.id})
    names.printed.clear()
    names.run(ex.GRAPH)
    nodes, edges = names.printed[0][0], names.printed[1][0]
    assert [n.id for n in nodes] == [customer.id, order.id]  # the product is not inbound
    assert [(e.src, e.dst, e.edge_type, e.weight) for e in edges] == [
        (order.id, customer.id, "placed_by", 1.0)
    ]
    assert {n.id for n in db.graph.neighbors(order.id)} == {customer.id, product.id}


def test_agent_ingest(names: Namespace) -> None:
    names.run(ex.QUICK_START)
    names.run(ex.AGENT_INGEST)
    (newest,) = names["db"].collection("ai_decisions").latest(limit=1)
    assert newest.data["action"] == "approve_loan" and newest.data["applicant"] == "cust_001"


def test_error_handling(names: Namespace) -> None:
    names.run(ex.QUICK_START)
    names.printed.clear()
    names.run(ex.ERROR_HANDLING)
    assert names.printed == [("Not found: nuc_missing",)]
    names["db"].close()
    names["db"] = SapixClient(url="http://127.0.0.1:9", agent="my-app")
    names.run(ex.ERROR_HANDLING)
    assert names.printed[-1] == ("Cannot reach SapixDB — is it running?",)


def test_online_store(names: Namespace, url: str) -> None:
    names.run(ex.ONLINE_STORE)
    assert names.printed == [("placed",)]
    with SapixClient(url=url, agent="store") as db:
        linked = {n.id for n in db.graph.neighbors(names["order"].id)}
        assert linked == {names["customer"].id, names["shirt"].id}


def test_subscribe_agent_and_stream_event_fields(names: Namespace, url: str) -> None:
    notified: list[Any] = []

    def send_shipping_notification(payload: Any) -> None:
        notified.append(payload)
        raise ExampleDone

    def write(db: SapixClient) -> None:
        db.ingest("orders", {"status": "placed"})
        db.ingest("orders", {"status": "shipped"})

    names["send_shipping_notification"] = send_shipping_notification
    with writing(url, write), pytest.raises(ExampleDone):
        names.run(ex.SUBSCRIBE_AGENT_SYNC)
    assert notified == [{"status": "shipped"}]
    event = names["event"]
    assert names.printed[-1] == (f"New record: {event.record_id} payload={event.payload}",)

    names.run(ex.STREAM_EVENT_FIELDS)  # the fields, on the event the loop left behind
    assert isinstance(event, StreamEvent)
    assert (event.agent_id, event.event_type) == ("orders", "record.written")
    assert isinstance(event.record_id, str) and len(event.content_hash) == 64
    assert isinstance(event.timestamp_ms, int) and event.payload == {"status": "shipped"}


def test_subscribe_with_backfill_and_filter(names: Namespace) -> None:
    names.run(ex.QUICK_START)
    transactions = names["db"].collection("transactions")
    transactions.write({"risk_score": 0.2})
    transactions.write({"amount": 5})  # no risk_score: filtered out
    risky = transactions.write({"risk_score": 0.9})
    flagged: list[StreamEvent] = []

    def flag_for_review(event: StreamEvent) -> None:
        flagged.append(event)
        raise ExampleDone

    names["flag_for_review"] = flag_for_review
    with pytest.raises(ExampleDone):
        names.run(ex.SUBSCRIBE_BACKFILL)  # replayed: all three were written after that HLC
    assert [e.record_id for e in flagged] == [risky.id]


def test_async_subscriptions(names: Namespace, url: str) -> None:
    names.run(ex.SUBSCRIBE_ASYNC)
    processed: list[StreamEvent] = []

    async def process_event(event: StreamEvent) -> None:
        processed.append(event)
        raise ExampleDone

    names["process_event"] = process_event
    with writing(url, lambda db: db.ingest("orders", {"order": 1})), pytest.raises(ExampleDone):
        asyncio.run(asyncio.wait_for(names["stream_handler"](), timeout=STREAM_TIMEOUT))
    assert processed[0].agent_id == "orders"

    async def until_printed() -> None:
        listener = asyncio.create_task(names["global_stream"]())
        while not names.printed:
            await asyncio.sleep(0.02)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener

    def write(db: SapixClient) -> None:
        db.ingest("elsewhere", {"x": 1})
        db.ingest("payments", {"amount": 5})

    with writing(url, write):
        asyncio.run(asyncio.wait_for(until_printed(), timeout=STREAM_TIMEOUT))
    agent, record_id, timestamp_ms = names.printed[0]
    assert agent in ("orders", "payments") and isinstance(timestamp_ms, int) and record_id
