"""The wire itself: both generations' field names, legacy endpoints, query types."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import msgpack
import pytest

from tests.sapixdb.server_process import ServerProcess

CURRENT = {
    "record_id",
    "content_hash",
    "parent_hash",
    "timestamp_hlc",
    "timestamp_ms",
    "payload",
    "payload_b64",
    "flags",
    "schema_version",
}
LEGACY = {"id", "hash", "prev_hash", "timestamp", "data", "collection"}
WRITE = {
    "record_id",
    "content_hash",
    "chain_head",
    "codios_verified",
    "codios_mode",
    "codios_contract_id",
    "parent_hash",
    "timestamp_hlc",
    "timestamp_ms",
}


@pytest.fixture
def http(server: ServerProcess) -> Any:
    with httpx.Client(base_url=server.url, headers={"Content-Type": "application/json"}) as c:
        yield c


@pytest.fixture
def agent() -> str:
    return f"w{uuid.uuid4().hex[:12]}"


def test_write_and_record_are_supersets_of_both_generations(http: httpx.Client, agent: str) -> None:
    written = http.post(f"/v1/agents/{agent}/records/json", json={"data": {"a": [1, 2]}}).json()
    assert set(written) >= WRITE | {"id", "hash", "prev_hash", "timestamp", "collection"}
    assert written["codios_mode"] == "open" and written["codios_verified"] is None
    record = http.get(f"/v1/agents/{agent}/records/{written['content_hash']}").json()
    assert set(record) >= CURRENT | LEGACY
    assert msgpack.unpackb(base64.b64decode(record["payload_b64"])) == {"a": [1, 2]}
    assert record["data"] == record["payload"] == {"a": [1, 2]}
    assert record["flags"] & 1  # GENESIS on the first record of a strand
    assert (
        record["timestamp"].endswith("Z")
        and record["timestamp_ms"] == record["timestamp_hlc"] >> 16
    )


def test_current_query_types(http: httpx.Client, agent: str) -> None:
    base = f"/v1/agents/{agent}"
    hashes = [
        http.post(f"{base}/records/json", json={"data": {"n": n, "g": n % 2}}).json()
        for n in range(4)
    ]

    def q(body: dict[str, Any]) -> Any:
        response = http.post(f"{base}/query", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    assert [r["payload"]["n"] for r in q({"type": "latest", "limit": 2})["records"]] == [3, 2]
    scan = q({"type": "scan", "filter": {"field": "g", "op": "eq", "value": 1}})
    assert [r["payload"]["n"] for r in scan["records"]] == [3, 1]
    ops = q(
        {
            "type": "scan",
            "filter": [
                {"field": "n", "op": "gte", "value": 1},
                {"field": "n", "op": "lt", "value": 3},
            ],
        }
    )
    assert [r["payload"]["n"] for r in ops["records"]] == [2, 1]
    as_of = q({"type": "as_of", "timestamp_hlc": hashes[1]["timestamp_hlc"], "limit": 10})
    assert [r["payload"]["n"] for r in as_of["records"]] == [0, 1]
    assert [r["payload"]["g"] for r in q({"type": "current", "key": "g"})["records"]] == [1, 0]
    assert q({"type": "count_current", "key": "g"}) == {"count": 2}
    assert q({"type": "chain_head"})["chain_head"] == hashes[3]["content_hash"]
    found = q({"type": "hash", "content_hash": hashes[2]["content_hash"]})["records"]
    assert [r["payload"]["n"] for r in found] == [2]
    window = q(
        {
            "type": "time_range",
            "from_ts": hashes[1]["timestamp_hlc"],
            "to_ts": hashes[2]["timestamp_hlc"],
        }
    )
    assert [r["payload"]["n"] for r in window["records"]] == [1, 2]
    strand = http.get(f"{base}/strand/records", params={"limit": 2, "offset": 1}).json()
    assert [r["payload"]["n"] for r in strand["records"]] == [1, 2]


def test_tombstone_endpoints(http: httpx.Client, agent: str) -> None:
    base = f"/v1/agents/{agent}"
    written = http.post(f"{base}/records/json", json={"data": {"k": "a"}}).json()
    h = written["content_hash"]
    tomb = http.delete(f"{base}/records/{h}")
    assert tomb.status_code == 200 and tomb.json()["flags"] & 2
    listed = http.get(f"{base}/records/deleted").json()["records"]
    assert listed[0]["original_hash"] == h and listed[0]["original_record"]["content_hash"] == h
    assert set(listed[0]) == {
        "tombstone_record_id",
        "tombstone_ts_ms",
        "original_hash",
        "original_record",
    }
    restored = http.post(f"{base}/records/{h}/restore").json()
    assert set(restored) == {"restored", "original_hash", "new_content_hash", "new_record_id"}
    assert http.get(f"{base}/records/deleted").json() == {"records": []}


def test_legacy_endpoints_answer_with_legacy_names(http: httpx.Client, agent: str) -> None:
    w1 = http.post(f"/v1/{agent}/strand/write", json={"collection": "orders", "data": {"s": 1}})
    w2 = http.post(f"/v1/{agent}/ingest", json={"collection": "orders", "data": {"s": 2}})
    http.post(f"/v1/{agent}/strand/write", json={"collection": "users", "data": {"s": 1}})
    for response in (w1, w2):
        assert response.status_code == 200
        assert set(response.json()) >= {"id", "hash", "prev_hash", "timestamp", "collection"}
    assert w2.json()["prev_hash"] == w1.json()["hash"]
    assert w1.json()["collection"] == "orders"
    record = http.get(f"/v1/{agent}/strand/{w1.json()['id']}").json()
    assert set(record) >= {"id", "data", "timestamp", "hash", "prev_hash", "collection"}
    assert record["data"] == {"s": 1}
    query = http.post(
        f"/v1/{agent}/strand/query",
        json={"collection": "orders", "latest": True, "filter": {"s": 2}},
    ).json()
    assert [r["data"] for r in query["results"]] == [{"s": 2}] and query["records"] == query[
        "results"
    ]
    everything = http.post(f"/v1/{agent}/strand/query", json={"collection": "orders"}).json()
    assert len(everything["results"]) == 2
    before = http.post(
        f"/v1/{agent}/strand/query", json={"collection": "orders", "as_of": "2001-01-01T00:00:00Z"}
    ).json()
    assert before["results"] == []


def test_legacy_graph_endpoints(http: httpx.Client, agent: str) -> None:
    a = http.post(f"/v1/agents/{agent}/records/json", json={"data": {"n": "a"}}).json()
    b = http.post(f"/v1/agents/{agent}/records/json", json={"data": {"n": "b"}}).json()
    edge = {"src": a["record_id"], "dst": b["content_hash"], "edge_type": "next", "weight": 2}
    assert http.post(f"/v1/{agent}/graph/edge", json=edge).status_code == 200
    legacy = http.post(
        f"/v1/{agent}/graph/traverse",
        json={"from": a["record_id"], "depth": 1, "direction": "outbound"},
    ).json()
    current = http.get(f"/v1/{agent}/graph/traverse/{a['record_id']}?depth=1").json()
    assert legacy == current
    assert [n["data"] for n in current["nodes"]] == [{"n": "a"}, {"n": "b"}]
    assert current["edges"][0]["dst"] == b["record_id"] and current["edges"][0]["weight"] == 2
    assert set(current["edges"][0]) == {"src", "dst", "edge_type", "weight", "timestamp_hlc"}
    edges = http.get(f"/v1/{agent}/graph/edges/{a['record_id']}").json()["edges"]
    assert [(e["dst"], e["edge_type"]) for e in edges] == [(b["record_id"], "next")]
    assert http.get(f"/v1/{agent}/graph/edges/{b['record_id']}").json() == {"edges": []}
    removed = http.request(
        "DELETE",
        f"/v1/{agent}/graph/edge",
        json={"src": a["record_id"], "dst": b["record_id"], "edge_type": "next"},
    )
    assert removed.json()["removed"] is True


def test_edge_batch_endpoint(http: httpx.Client, agent: str) -> None:
    """``POST /v1/{G}/graph/edges``: our extension, many edges in one transaction."""
    a = http.post(f"/v1/agents/{agent}/records/json", json={"data": {"n": "a"}}).json()
    b = http.post(f"/v1/agents/{agent}/records/json", json={"data": {"n": "b"}}).json()
    edges = [
        {"src": a["record_id"], "dst": b["content_hash"], "edge_type": "next", "weight": 2},
        {"src": b["record_id"], "dst": a["record_id"], "edge_type": "back"},
    ]
    response = http.post(f"/v1/{agent}/graph/edges", json={"edges": edges})
    assert response.status_code == 200, response.text
    added = response.json()["edges"]
    assert [(e["src"], e["dst"], e["edge_type"], e["weight"]) for e in added] == [
        (a["record_id"], b["record_id"], "next", 2.0),
        (b["record_id"], a["record_id"], "back", 1.0),
    ]
    assert set(added[0]) == {"created", "src", "dst", "edge_type", "weight", "timestamp_hlc"}
    single = http.post(f"/v1/{agent}/graph/edge", json=edges[1]).json()
    assert set(single) == set(added[1])  # each item is what the single endpoint answers
    traverse = http.get(f"/v1/{agent}/graph/traverse/{a['record_id']}?depth=2").json()
    assert [n["data"] for n in traverse["nodes"]] == [{"n": "a"}, {"n": "b"}]
    assert http.post(f"/v1/{agent}/graph/edges", json={"edges": []}).json() == {"edges": []}
    limited = http.post(
        f"/v1/{agent}/graph/edges", json={"edges": [{"src": "x", "dst": "y"}] * 10_001}
    )
    assert limited.status_code == 400 and limited.json()["code"] == "TOO_MANY_EDGES"
    assert http.get(f"/v1/{agent}/graph/edges/x").json() == {"edges": []}


def test_record_batch_endpoint(http: httpx.Client, agent: str) -> None:
    """``POST /v1/agents/{A}/records/batch``: our extension, many records in one transaction."""
    base = f"/v1/agents/{agent}"
    items = [{"n": 0}, [1, 2], "three", None]
    response = http.post(f"{base}/records/batch", json={"items": items})
    assert response.status_code == 200, response.text
    written = response.json()["records"]
    assert all(
        set(w) >= WRITE | {"id", "hash", "prev_hash", "timestamp", "collection"} for w in written
    )
    assert [w["data"] for w in written] == items and written[0]["parent_hash"] == "0" * 64
    assert [w["parent_hash"] for w in written[1:]] == [w["content_hash"] for w in written[:-1]]
    single = http.post(f"{base}/records/json", json={"data": {"n": 4}}).json()
    assert set(single) == set(written[0])  # each item is what the single endpoint answers
    assert single["parent_hash"] == written[-1]["content_hash"]
    strand = http.get(f"{base}/strand/records").json()["records"]
    assert [r["record_id"] for r in strand] == [w["record_id"] for w in written] + [
        single["record_id"]
    ]
    assert http.post(f"{base}/records/batch", json={"items": []}).json() == {"records": []}
    legacy = http.post(f"{base}/records/batch", json={"items": [{"x": 1}], "collection": "c"})
    assert legacy.json()["records"][0]["collection"] == "c"  # as /v1/{agent}/strand/write
    # All or nothing: a record the server cannot store (nested deeper than a record may be),
    # in the middle of the batch, fails the whole request.
    deep = b"[" * 300 + b"]" * 300
    body = b'{"items": [{"ok": 1}, ' + deep + b', {"ok": 3}]}'
    failed = http.post(f"{base}/records/batch", content=body)
    assert failed.status_code == 400 and failed.json()["code"] == "INVALID_PAYLOAD"
    limited = http.post(f"{base}/records/batch", json={"items": [{"x": 1}] * 10_001})
    assert limited.status_code == 400 and limited.json()["code"] == "TOO_MANY_RECORDS"
    assert len(http.get(f"{base}/strand/records").json()["records"]) == 6  # nothing new
    # No clash with the record routes: GET and DELETE of "batch" name a record that is absent.
    assert http.get(f"{base}/records/batch").status_code == 404
    assert http.delete(f"{base}/records/batch").status_code == 404


def test_health_checkpoint_blobs(http: httpx.Client, agent: str) -> None:
    assert http.get("/v1/health").json() == {"status": "ok", "agent": "sapixdb"}
    http.post(f"/v1/agents/{agent}/records/json", json={"data": 1})
    checkpoint = http.post("/v1/control/checkpoint").json()
    assert checkpoint["status"] == "ok" and checkpoint["agents_checkpointed"] >= 1
    stored = http.put("/v1/blobs", content=b"raw").json()
    assert set(stored) == {"content_hash", "size_bytes", "chunked", "encrypted", "strand_record_id"}
    assert http.get(f"/v1/blobs/{stored['content_hash']}").content == b"raw"


def test_filter_operators_and_dotted_paths(http: httpx.Client, agent: str) -> None:
    base = f"/v1/agents/{agent}"
    for n, tags in enumerate([["a"], ["b"], ["a", "c"]]):
        data = {"n": n, "meta": {"owner": f"u{n % 2}"}, "tags": tags, "name": f"item-{n}"}
        http.post(f"{base}/records/json", json={"data": data})

    def ns(*conditions: dict[str, Any]) -> list[int]:
        body = {"type": "scan", "filter": list(conditions)}
        return [r["payload"]["n"] for r in http.post(f"{base}/query", json=body).json()["records"]]

    assert ns({"field": "meta.owner", "op": "eq", "value": "u0"}) == [2, 0]
    assert ns({"field": "n", "op": "ne", "value": 1}) == [2, 0]
    assert ns({"field": "n", "op": "in", "value": [0, 1]}) == [1, 0]
    assert ns({"field": "tags", "op": "contains", "value": "a"}) == [2, 0]
    assert ns({"field": "name", "op": "contains", "value": "-1"}) == [1]
    assert ns({"field": "n", "op": "gt", "value": 0}, {"field": "meta.owner", "value": "u0"}) == [2]
    assert ns({"field": "missing", "op": "eq", "value": None}) == []


def test_legacy_latest_keeps_one_version_per_record(http: httpx.Client, agent: str) -> None:
    """``latest: true``: the newest version of each record (versions share the payload's
    ``id``; a payload without one is a record of its own), filtered after the reduction."""
    for data in (
        {"id": "o-1", "s": 1},
        {"id": "o-2", "s": 1},
        {"id": "o-1", "s": 2},
        {"s": 9},
        {"id": 1, "s": 1},
        {"id": "1", "s": 1},  # a string id is not the integer id
    ):
        written = http.post(f"/v1/{agent}/strand/write", json={"collection": "c", "data": data})
        assert written.status_code == 200

    def query(**body: object) -> list[object]:
        answer = http.post(f"/v1/{agent}/strand/query", json={"collection": "c", **body})
        assert answer.status_code == 200
        return [r["data"] for r in answer.json()["results"]]

    assert query(latest=True) == [
        {"id": "1", "s": 1},
        {"id": 1, "s": 1},
        {"s": 9},
        {"id": "o-1", "s": 2},
        {"id": "o-2", "s": 1},
    ]
    assert len(query()) == 6  # without latest: every version
    assert query(latest=True, filter={"id": "o-1"}) == [{"id": "o-1", "s": 2}]
    assert {"id": "o-1", "s": 1} not in query(latest=True, filter={"s": 1})  # superseded
