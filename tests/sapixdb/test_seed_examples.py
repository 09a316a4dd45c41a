"""The seed document's examples ("Python SDK v0.1", sapixdb.com/docs/sdk/python), run as tests.

Only the opening of the document could be retrieved: the quick start and the async client
are copied verbatim, and the FastAPI integration verbatim up to where the stored copy ends
(``async def create_product(``). Every other example (the rest of the FastAPI integration,
time travel, graph, agent ingest, error handling, the online store, the four subscription
examples) is written from the wire spec's description of each method, following the structure
and data of the same examples in the official Go SDK's README (github.com/sapixdb/sapixdb-go),
translated to the Python API; they are marked as such. Each runs against the session's real
server; only the host in the URL is adapted.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sapixdb import SapixClient
from tests.sapixdb.server_process import ServerProcess

SEED_URL = "http://localhost:7475"

# --- verbatim from the seed document ----------------------------------------------------------

QUICK_START = """
from sapixdb import SapixClient

db = SapixClient(url="http://localhost:7475", agent="my-app")

# Check connection
print(db.ping())  # True

# Write a record
record = db.collection("products").write({
    "name":  "Classic T-Shirt",
    "price": 29.99,
    "stock": 100,
})
print(record.id)    # "nuc_abc123"
print(record.hash)  # "sha3:e7f2a1..."  — cryptographic proof

# Read latest records
products = db.collection("products").latest()

# Filter
shirts = db.collection("products").find({"category": "apparel"})

# Time travel
from datetime import datetime, timedelta, timezone
yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
snapshot = db.collection("orders").as_of(yesterday).latest()
"""

ASYNC_CLIENT = """
import asyncio
from sapixdb import AsyncSapixClient

async def main():
    db = AsyncSapixClient(url="http://localhost:7475", agent="my-app")

    record = await db.collection("products").write({"name": "T-Shirt", "price": 29.99})
    products = await db.collection("products").latest()

    # Async context manager
    async with AsyncSapixClient(url="http://localhost:7475", agent="my-app") as db:
        shirts = await db.collection("products").find({"category": "apparel"})

asyncio.run(main())
"""

FASTAPI_VERBATIM_PART = """
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sapixdb import AsyncSapixClient, SapixNotFoundError

app = FastAPI()
db  = AsyncSapixClient(url="http://localhost:7475", agent="store")


class ProductIn(BaseModel):
    name:     str
    price:    float
    stock:    int = 0
    category: str | None = None

@app.post("/products", status_code=201)
async def create_product("""

# --- written from the spec (the stored copy of the seed document ends above) -----------------

FASTAPI_RECONSTRUCTED_REST = """product: ProductIn):
    record = await db.collection("products").write(product.model_dump())
    return {"id": record.id, "hash": record.hash}


@app.get("/products/{product_id}")
async def get_product(product_id: str):
    try:
        record = await db.collection("products").get(product_id)
    except SapixNotFoundError:
        raise HTTPException(status_code=404, detail="Product not found")
    return record.data


@app.get("/products")
async def list_products(category: str | None = None):
    if category:
        records = await db.collection("products").find({"category": category})
    else:
        records = await db.collection("products").latest()
    return [r.data for r in records]
"""

TIME_TRAVEL = """
from datetime import datetime, timedelta, timezone
from sapixdb import SapixClient

db = SapixClient(url="http://localhost:7475", agent="my-app")

ts = (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()
snapshot = db.collection("orders").as_of(ts).find({"customer_id": "cust_001"})
# Returns orders exactly as they existed 30 minutes ago
print(snapshot)
"""

GRAPH = """
from sapixdb import SapixClient

db = SapixClient(url="http://localhost:7475", agent="store")

customer = db.collection("customers").write({"name": "Alice Johnson"})
order = db.collection("orders").write({"customer_id": customer.id, "status": "placed"})
shirt = db.collection("products").write({"sku": "SHIRT-001", "name": "Classic T-Shirt"})

# Link order -> customer
db.graph.relate(order.id, customer.id, "placed_by", 1.0)
db.graph.relate(order.id, shirt.id, "contains", 1.0)

# Find everything connected to a customer (depth 2)
result = db.graph.traverse(customer.id, depth=2, direction="inbound")
print(result.nodes)  # list[Record]
print(result.edges)  # list[GraphEdge]
"""

AGENT_INGEST = """
from sapixdb import SapixClient

db = SapixClient(url="http://localhost:7475", agent="my-app")

result = db.ingest("ai_decisions", {
    "model":      "gpt-4o",
    "action":     "approve_loan",
    "confidence": 0.94,
    "reasoning":  "Credit score 780, DTI 28%",
})
# Every decision is hash-chained: an immutable audit trail.
print(result.id, result.hash)
"""

ERROR_HANDLING = """
from sapixdb import SapixClient, SapixError, SapixNetworkError, SapixNotFoundError

db = SapixClient(url="http://localhost:7475", agent="my-app")

try:
    record = db.collection("orders").get("nuc_missing")
except SapixNotFoundError as e:
    print("not found:", e.record_id)
except SapixNetworkError as e:
    print("network error:", e.cause)
except SapixError as e:
    print(f"error {e.status}: {e}")
"""

ONLINE_STORE = """
from sapixdb import SapixClient

db = SapixClient(url="http://localhost:7475", agent="store")

# 1. Add product
shirt = db.collection("products").write({
    "sku": "SHIRT-001", "name": "Classic T-Shirt",
    "price": 29.99, "stock": 200, "category": "apparel",
})

# 2. Register customer
customer = db.collection("customers").write({
    "name": "Alice Johnson", "email": "alice@example.com",
})

# 3. Place order
order = db.collection("orders").write({
    "customer_id": customer.id,
    "items": [{"product_id": shirt.id, "qty": 2, "unit_price": 29.99}],
    "total": 59.98,
    "status": "placed",
})

# 4. Link in graph
db.graph.relate(order.id, customer.id, "placed_by", 1.0)
db.graph.relate(order.id, shirt.id, "contains", 1.0)

# 5. Ship (append — the "placed" version is preserved forever)
db.collection("orders").write({
    "customer_id": customer.id,
    "status": "shipped",
    "tracking": "UPS-1Z999AA10123456784",
})

# 6. Audit: what was the status when it was placed?
original = db.collection("orders").as_of(order.timestamp).find_one({"customer_id": customer.id})
print(original.data["status"])  # "placed" — not "shipped"
"""

SUBSCRIBE_AGENT_SYNC = """
from sapixdb import SapixClient

db = SapixClient(url="http://localhost:7475", agent="my-app")

for event in db.subscribe_agent("live_orders"):
    print(event.event_type, event.agent_id, event.payload["order_id"])
    break
"""

SUBSCRIBE_AGENT_ASYNC_REPLAY = """
import asyncio
from sapixdb import AsyncSapixClient

async def main():
    async with AsyncSapixClient(url="http://localhost:7475", agent="my-app") as db:
        first = await db.collection("replayed").write({"step": 1})
        await db.collection("replayed").write({"step": 2})
        async for event in db.subscribe_agent("replayed", since=first.timestamp_hlc):
            print(event.record_id != first.id, event.payload["step"])  # True 2
            break

asyncio.run(main())
"""

SUBSCRIBE_GLOBAL_SYNC = """
from sapixdb import SapixClient

db = SapixClient(url="http://localhost:7475", agent="my-app")

for event in db.subscribe_global(agents=["audit_a", "audit_b"]):
    print(event.agent_id in ("audit_a", "audit_b"), event.event_type)
    break
"""

SUBSCRIBE_GLOBAL_ASYNC_FILTER = """
import asyncio
from sapixdb import AsyncSapixClient

async def main():
    async with AsyncSapixClient(url="http://localhost:7475", agent="my-app") as db:
        async for event in db.subscribe_global(filter_field="alert"):
            print("alert from", event.agent_id, event.payload["alert"])
            break

asyncio.run(main())
"""


def run_example(text: str, url: str) -> dict[str, Any]:
    """Run an example exactly as printed, with only the server URL adapted."""
    namespace: dict[str, Any] = {"__name__": "seed_example"}
    exec(compile(text.replace(SEED_URL, url), "<seed example>", "exec"), namespace)
    return namespace


@pytest.fixture
def url(server: ServerProcess) -> str:
    return server.url


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_quick_start(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_example(QUICK_START, url)
    out = lines(capsys)
    record = namespace["record"]
    assert out == ["True", record.id, record.hash]
    assert any(p.id == record.id for p in namespace["products"])
    assert namespace["snapshot"] == []  # nothing was written a day ago
    assert all(s.data.get("category") == "apparel" for s in namespace["shirts"])


def test_async_client(url: str) -> None:
    run_example(ASYNC_CLIENT, url)
    with SapixClient(url=url) as db:
        assert db.collection("products").find_one({"name": "T-Shirt", "price": 29.99})


def test_fastapi_integration(url: str) -> None:
    from fastapi.testclient import TestClient

    namespace = run_example(FASTAPI_VERBATIM_PART + FASTAPI_RECONSTRUCTED_REST, url)
    with TestClient(namespace["app"]) as client:
        created = client.post(
            "/products", json={"name": "Hoodie", "price": 49.0, "category": "hood"}
        )
        assert created.status_code == 201
        product = client.get(f"/products/{created.json()['id']}")
        assert product.json() == {"name": "Hoodie", "price": 49.0, "stock": 0, "category": "hood"}
        assert client.get("/products/" + "0" * 64).status_code == 404
        assert client.get("/products", params={"category": "hood"}).json()[0]["name"] == "Hoodie"


def test_time_travel(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_example(TIME_TRAVEL, url)
    assert namespace["snapshot"] == [] and lines(capsys) == ["[]"]


def test_graph(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_example(GRAPH, url)
    result, order = namespace["result"], namespace["order"]
    customer, shirt = namespace["customer"], namespace["shirt"]
    assert [n.id for n in result.nodes] == [customer.id, order.id]  # shirt is not inbound
    edges = [(e.src, e.dst, e.edge_type) for e in result.edges]
    assert edges == [(order.id, customer.id, "placed_by")]
    assert shirt.id not in lines(capsys)[0]


def test_agent_ingest(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_example(AGENT_INGEST, url)
    result = namespace["result"]
    assert lines(capsys) == [f"{result.id} {result.hash}"]
    with SapixClient(url=url) as db:
        assert db.collection("ai_decisions").get(result.id).data["action"] == "approve_loan"


def test_error_handling(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_example(ERROR_HANDLING, url)
    assert lines(capsys) == ["not found: nuc_missing"]


def test_online_store(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_example(ONLINE_STORE, url)
    assert lines(capsys) == ["placed"]
    with SapixClient(url=url, agent="store") as db:
        linked = {n.id for n in db.graph.neighbors(namespace["order"].id)}
        assert linked == {namespace["customer"].id, namespace["shirt"].id}


def _keep_writing(url: str, write: Callable[[SapixClient], None]) -> Iterator[threading.Event]:
    """Write in the background until told to stop (live streams start at "now")."""
    stop = threading.Event()

    def run() -> None:
        with SapixClient(url=url) as db:
            while not stop.is_set():
                write(db)
                time.sleep(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    yield stop
    stop.set()
    thread.join()


def test_subscribe_agent_sync(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    order_id = f"o-{uuid.uuid4().hex[:6]}"
    for _ in _keep_writing(url, lambda db: db.ingest("live_orders", {"order_id": order_id})):
        run_example(SUBSCRIBE_AGENT_SYNC, url)
    assert lines(capsys) == [f"record.written live_orders {order_id}"]


def test_subscribe_agent_async_replay(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_example(SUBSCRIBE_AGENT_ASYNC_REPLAY, url)
    assert lines(capsys) == ["True 2"]


def test_subscribe_global_sync(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    def write(db: SapixClient) -> None:
        db.ingest("audit_other", {"x": 1})
        db.ingest("audit_b", {"x": 2})

    for _ in _keep_writing(url, write):
        run_example(SUBSCRIBE_GLOBAL_SYNC, url)
    assert lines(capsys) == ["True record.written"]


def test_subscribe_global_async_filter(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    def write(db: SapixClient) -> None:
        db.ingest("monitor", {"note": "no alert field"})
        db.ingest("monitor", {"alert": "disk full"})

    for _ in _keep_writing(url, write):
        run_example(SUBSCRIBE_GLOBAL_ASYNC_FILTER, url)
    assert lines(capsys) == ["alert from monitor disk full"]
