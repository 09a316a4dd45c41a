"""The SDK suite: every test runs on embedded SQLite, embedded PostgreSQL and HTTP."""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sapixdb import (
    AsyncSapixClient,
    GraphEdge,
    Record,
    SapixClient,
    SapixError,
    SapixNotFoundError,
    TraverseResult,
    WriteResult,
)

HEX64 = re.compile(r"[0-9a-f]{64}")
BIG = "x" * (5 * 1024 * 1024)  # over the store's 4 MiB record limit, under the 8 MiB body limit


def test_ping_and_health(db: SapixClient) -> None:
    assert db.ping() is True
    assert db.health()["status"] == "ok"


def test_write_carries_both_generations_names(db: SapixClient, name: str) -> None:
    first = db.collection(name).write({"n": 1})
    second = db.collection(name).write({"n": 1})
    assert isinstance(first, WriteResult)
    assert first.id == first.record_id and first.hash == first.content_hash
    assert HEX64.fullmatch(first.hash)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    assert second.hash != first.hash  # equal payloads, different place in the chain
    assert second.chain_head == second.hash
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first.timestamp)
    assert second.timestamp_hlc > first.timestamp_hlc


def test_get_by_id_and_by_hash(db: SapixClient, name: str) -> None:
    written = db.collection(name).write({"sku": "A-1", "price": 9.5})
    by_id = db.collection(name).get(written.id)
    by_hash = db.collection(name).get(written.hash)
    assert isinstance(by_id, Record)
    assert by_id.data == by_hash.data == {"sku": "A-1", "price": 9.5}
    assert by_id.hash == written.hash and by_id.prev_hash == written.prev_hash
    assert by_id.collection == name


def test_get_missing_raises_not_found(db: SapixClient, name: str) -> None:
    db.collection(name).write({"x": 1})
    with pytest.raises(SapixNotFoundError) as caught:
        db.collection(name).get("0" * 64)
    assert caught.value.record_id == "0" * 64
    assert caught.value.status == 404 and caught.value.code == "NOT_FOUND"


def test_a_record_of_another_collection_is_not_found(db: SapixClient, name: str) -> None:
    other = db.collection(name + "x").write({"x": 1})
    with pytest.raises(SapixNotFoundError):
        db.collection(name).get(other.id)


def test_latest_is_newest_first_and_limited(db: SapixClient, name: str) -> None:
    for n in range(5):
        db.collection(name).write({"n": n})
    latest = db.collection(name).latest(limit=3)
    assert [r.data["n"] for r in latest] == [4, 3, 2]
    assert [r.data["n"] for r in db.collection(name).latest()] == [4, 3, 2, 1, 0]
    assert db.collection(name + "empty").latest() == []


def test_filters_are_the_and_of_every_key(db: SapixClient, name: str) -> None:
    orders = db.collection(name)
    orders.write({"status": "open", "region": "eu", "n": 1})
    orders.write({"status": "open", "region": "us", "n": 2})
    orders.write({"status": "closed", "region": "eu", "n": 3})
    assert [r.data["n"] for r in orders.find({"status": "open", "region": "eu"})] == [1]
    assert [r.data["n"] for r in orders.find({"status": "open"})] == [2, 1]
    assert [r.data["n"] for r in orders.latest(filter={"region": "eu"})] == [3, 1]
    found = orders.find_one({"region": "eu", "status": "closed"})
    assert found is not None and found.data["n"] == 3
    assert orders.find_one({"status": "open", "region": "asia"}) is None


def test_json_equality_does_not_confuse_true_and_one(db: SapixClient, name: str) -> None:
    db.collection(name).write({"flag": True})
    db.collection(name).write({"flag": 1})
    assert [r.data["flag"] for r in db.collection(name).find({"flag": 1})] == [1]


def test_history_lists_every_version_oldest_first(db: SapixClient, name: str) -> None:
    for version in range(3):
        db.collection(name).write({"doc": "a", "v": version})
    db.collection(name).write({"doc": "b", "v": 0})
    history = db.collection(name).history(filter={"doc": "a"})
    assert [r.data["v"] for r in history] == [0, 1, 2]
    assert len(db.collection(name).history()) == 4


def test_as_of_bounds_every_method(db: SapixClient, name: str) -> None:
    col = db.collection(name)
    first = col.write({"k": "x", "v": 1})
    time.sleep(0.005)  # the next write lands in a later millisecond
    second = col.write({"k": "x", "v": 2})
    for t in (first.timestamp_hlc, first.timestamp, datetime.fromisoformat(first.timestamp)):
        snapshot = col.as_of(t)
        assert [r.id for r in snapshot.latest()] == [first.id]
        assert [r.id for r in snapshot.find({"k": "x"})] == [first.id]
        one = snapshot.find_one({"k": "x"})
        assert one is not None and one.id == first.id
        assert [r.id for r in snapshot.all()] == [first.id]
    later = col.as_of(second.timestamp_hlc)
    assert [r.id for r in later.all()] == [first.id, second.id]
    assert [r.id for r in later.latest()] == [second.id, first.id]
    before = col.as_of(datetime(2000, 1, 1, tzinfo=UTC))
    assert before.latest() == [] and before.find_one({"k": "x"}) is None


def test_as_of_rejects_a_bad_time(db: SapixClient, name: str) -> None:
    with pytest.raises(SapixError) as caught:
        db.collection(name).as_of("not a time")
    assert caught.value.status == 400


def test_write_batch_keeps_order_and_chains(db: SapixClient, name: str) -> None:
    results = db.collection(name).write_batch([{"i": i} for i in range(4)])
    assert len(results) == 4
    for before, after in itertools.pairwise(results):
        assert after.prev_hash == before.hash
    assert [r.data["i"] for r in db.collection(name).history()] == [0, 1, 2, 3]


def test_write_batch_returns_results_in_the_list_order(db: SapixClient, name: str) -> None:
    col = db.collection(name)
    records: list[Any] = [{"i": i, "pad": "p" * (i % 7)} for i in range(40)] + [[1], "s", None]
    results = col.write_batch(records)
    assert all(isinstance(r, WriteResult) for r in results)
    assert [col.get(r.id).data for r in results] == records
    assert [r.id for r in col.strand()] == [r.id for r in results]  # the strand's order too
    assert col.write_batch([]) == []


def test_write_batch_is_all_or_nothing(db: SapixClient, name: str) -> None:
    col = db.collection(name)
    cases: list[tuple[Any, int, str]] = [
        ({"big": BIG}, 413, "PAYLOAD_TOO_LARGE"),  # refused by the store, inside the transaction
        ({"when": object()}, 400, "INVALID_PAYLOAD"),  # not JSON
    ]
    for bad, status, code in cases:
        with pytest.raises(SapixError) as caught:
            col.write_batch([{"i": 0}, {"i": 1}, bad, {"i": 3}])
        assert (caught.value.status, caught.value.code) == (status, code)
        with pytest.raises(SapixError) as single:  # the error a single write raises
            col.write(bad)
        assert (single.value.status, single.value.code) == (status, code)
    assert col.strand() == []  # nothing was written
    first, _ = col.write_batch([{"i": 0}, {"i": 1}])
    assert first.prev_hash == "0" * 64  # still the strand's first record


def test_write_batch_takes_more_than_ten_thousand_records(db: SapixClient, name: str) -> None:
    # Our server takes 10,000 records per request; the HTTP client sends larger batches in
    # several requests, so the call behaves as it does embedded.
    results = db.collection(name).write_batch([{"i": i} for i in range(10_001)])
    assert len(results) == 10_001
    for before, after in itertools.pairwise(results):
        assert after.prev_hash == before.hash
    last = db.collection(name).strand(limit=1, offset=10_000)
    assert [(r.id, r.data) for r in last] == [(results[-1].id, {"i": 10_000})]
    assert db.collection(name).verify()["records_checked"] == 10_001


def test_ingest_is_a_collection_write(db: SapixClient, name: str) -> None:
    result = db.ingest(name, {"decision": "approve"})
    assert db.collection(name).get(result.id).data == {"decision": "approve"}


def test_graph_relate_traverse_neighbors_edges(db: SapixClient, name: str) -> None:
    col = db.collection(name)
    a, b, c = (col.write({"node": n}) for n in "abc")
    edge = db.graph.relate(a.id, b.id, "caused", weight=0.5)
    assert isinstance(edge, GraphEdge)
    assert (edge.src, edge.dst, edge.edge_type, edge.weight) == (a.id, b.id, "caused", 0.5)
    db.graph.add_edge(b.hash, c.id, "caused")  # a content hash names its record
    result = db.graph.traverse(a.id, depth=2)
    assert isinstance(result, TraverseResult)
    assert [n.data for n in result.nodes] == [{"node": "a"}, {"node": "b"}, {"node": "c"}]
    assert {(e.src, e.dst) for e in result.edges} == {(a.id, b.id), (b.id, c.id)}
    assert [n.id for n in db.graph.traverse(a.id, depth=1).nodes] == [a.id, b.id]
    inbound = db.graph.traverse(c.id, depth=5, direction="inbound")
    assert [n.id for n in inbound.nodes] == [c.id, b.id, a.id]
    assert [n.id for n in db.graph.neighbors(b.id, direction="both")] == [c.id, a.id]
    assert [(e.src, e.dst) for e in db.graph.edges(b.id)] == [(b.id, c.id)]  # outbound
    assert db.graph.remove_edge(a.id, b.id, "caused") is True
    assert db.graph.remove_edge(a.id, b.id, "caused") is False
    assert [n.id for n in db.graph.traverse(a.id, depth=3).nodes] == [a.id]


def test_add_edges_keeps_order_weights_and_resolves_hashes(db: SapixClient, name: str) -> None:
    a, b, c, d = (db.collection(name).write({"node": n}) for n in "abcd")
    added = db.graph.add_edges(
        [(a.id, b.id, "caused"), (b.hash, c.id, "caused", 0.25), (a.id, d.id, "cited", 2)]
    )
    assert all(isinstance(edge, GraphEdge) for edge in added)
    assert [(e.src, e.dst, e.edge_type, e.weight) for e in added] == [
        (a.id, b.id, "caused", 1.0),
        (b.id, c.id, "caused", 0.25),  # a content hash names its record, as in add_edge
        (a.id, d.id, "cited", 2.0),
    ]
    assert all(edge.timestamp_hlc > 0 for edge in added)
    result = db.graph.traverse(a.id, depth=2)
    assert [n.id for n in result.nodes] == [a.id, b.id, d.id, c.id]
    weights = {(e.src, e.dst): e.weight for e in result.edges}
    assert weights == {(a.id, b.id): 1.0, (b.id, c.id): 0.25, (a.id, d.id): 2.0}
    assert db.graph.add_edges([]) == []


def test_add_edges_is_all_or_nothing(db: SapixClient, name: str) -> None:
    a, b, c = (db.collection(name).write({"node": n}) for n in "abc")
    cases: list[tuple[Any, str]] = [
        ((b.id, c.id, ""), "edge_type"),
        ((b.id, c.id, "next", "heavy"), "weight"),
        ((b.id, 7, "next"), "dst"),
    ]
    for bad, field in cases:
        with pytest.raises(SapixError) as caught:
            db.graph.add_edges([(a.id, b.id, "next"), bad, (c.id, a.id, "next")])
        error = caught.value
        assert (error.status, error.code) == (400, "BAD_REQUEST")
        assert error.message.startswith("edges[1]: ") and field in error.message
        with pytest.raises(SapixError) as single:  # the same error as add_edge's
            db.graph.add_edge(*bad)
        assert single.value.code == error.code and error.message.endswith(single.value.message)
    assert db.graph.edges(a.id) == [] and db.graph.edges(c.id) == []  # nothing was written
    shapes: list[Any] = [(a.id, b.id), (a.id, b.id, "next", 1.0, "extra"), "abc"]
    for shape in shapes:
        with pytest.raises(SapixError) as caught:
            db.graph.add_edges([(a.id, b.id, "next"), shape])
        assert caught.value.status == 400 and "edges[1]" in caught.value.message


def test_add_edges_limits_a_call_to_ten_thousand(db: SapixClient, name: str) -> None:
    a, b = (db.collection(name).write({"node": n}) for n in "ab")
    with pytest.raises(SapixError) as caught:
        db.graph.add_edges([(a.id, b.id, f"t{i}") for i in range(10_001)])
    assert (caught.value.status, caught.value.code) == (400, "TOO_MANY_EDGES")
    assert db.graph.edges(a.id) == []
    added = db.graph.add_edges([(a.id, b.id, f"t{i}") for i in range(10_000)])
    assert [e.edge_type for e in added] == [f"t{i}" for i in range(10_000)]
    assert len(db.graph.edges(a.id)) == 10_000


def test_graph_rejects_a_bad_direction(db: SapixClient, name: str) -> None:
    a = db.collection(name).write({"x": 1})
    with pytest.raises(SapixError) as caught:
        db.graph.traverse(a.id, direction="sideways")
    assert caught.value.status == 400 and caught.value.code == "BAD_REQUEST"


def test_tombstones_current_and_restore(db: SapixClient, name: str) -> None:
    col = db.collection(name)
    v1 = col.write({"sku": "a", "qty": 1})
    col.write({"sku": "a", "qty": 2})
    b = col.write({"sku": "b", "qty": 5})
    assert col.count_current("sku") == 2
    assert {r.data["qty"] for r in col.current("sku")} == {2, 5}
    tomb = col.delete(b.hash)
    assert tomb.prev_hash == b.hash
    assert col.get(tomb.id).is_tombstone
    assert col.count_current("sku") == 1
    deleted = col.deleted()
    assert [d["original_hash"] for d in deleted] == [b.hash]
    assert deleted[0]["original_record"]["payload"] == {"sku": "b", "qty": 5}
    with pytest.raises(SapixError) as caught:
        col.delete(b.hash)
    assert caught.value.status == 409
    restored = col.restore(b.hash)
    assert restored["restored"] is True and restored["original_hash"] == b.hash
    assert col.get(restored["new_record_id"]).data == {"sku": "b", "qty": 5}
    assert col.count_current("sku") == 2 and col.deleted() == []
    assert col.get(v1.id).data == {"sku": "a", "qty": 1}  # nothing is ever erased


def test_strand_pages_oldest_first(db: SapixClient, name: str) -> None:
    for n in range(5):
        db.collection(name).write({"n": n})
    page = db.collection(name).strand(limit=2, offset=2)
    assert [r.data["n"] for r in page] == [2, 3]


def test_verify_recomputes_the_chain(db: SapixClient, name: str) -> None:
    for n in range(3):
        db.collection(name).write({"n": n})
    report = db.collection(name).verify()
    assert report["ok"] is True and report["records_checked"] == 3


def test_blobs_round_trip(db: SapixClient) -> None:
    stored = db.put_blob(b"\x00\x01binary")
    assert stored["size_bytes"] == 8 and HEX64.fullmatch(stored["content_hash"])
    assert db.get_blob(stored["content_hash"]) == b"\x00\x01binary"
    assert db.put_blob(b"\x00\x01binary")["strand_record_id"] == stored["strand_record_id"]
    with pytest.raises(SapixNotFoundError):
        db.get_blob("f" * 64)


def test_non_json_payload_is_rejected(db: SapixClient, name: str) -> None:
    for bad in ({"when": object()}, {"text": "\ud800"}, {1: "non-string key"}, 2**70):
        with pytest.raises(SapixError) as caught:
            db.collection(name).write(bad)
        assert caught.value.status == 400


def test_bad_collection_name_is_a_400(db: SapixClient) -> None:
    with pytest.raises(SapixError) as caught:
        db.collection("../etc").write({"x": 1})
    assert caught.value.status in (400, 404)


# --- the async client: the same API, every method awaitable ---------------------------------


async def test_async_client_core_api(adb: AsyncSapixClient, name: str) -> None:
    assert await adb.ping() is True
    col = adb.collection(name)
    first = await col.write({"k": 1, "tag": "x"})
    results = await col.write_batch([{"k": i, "tag": "y"} for i in range(2, 6)])
    assert len(results) == 4 and len({r.hash for r in results}) == 4
    assert (await col.get(first.id)).data == {"k": 1, "tag": "x"}
    assert len(await col.latest(limit=3)) == 3
    assert {r.data["k"] for r in await col.find({"tag": "y"})} == {2, 3, 4, 5}
    assert await col.find_one({"tag": "y", "k": 99}) is None
    snapshot = col.as_of(first.timestamp_hlc)
    assert [r.id for r in await snapshot.all()] == [first.id]
    assert [r.id for r in await snapshot.latest()] == [first.id]
    one = await snapshot.find_one({"tag": "x"})
    assert one is not None and one.id == first.id
    assert len(await col.history()) == 5
    written = await adb.ingest(name, {"k": 9})
    assert (await col.get(written.hash)).data == {"k": 9}
    with pytest.raises(SapixNotFoundError):
        await col.get("0" * 64)


async def test_async_write_batch_chains_the_strand(adb: AsyncSapixClient, name: str) -> None:
    await adb.collection(name).write_batch([{"i": i} for i in range(6)])
    report = await adb.collection(name).verify()
    assert report == {**report, "ok": True, "records_checked": 6}
    assert {r.data["i"] for r in await adb.collection(name).history()} == set(range(6))


async def test_async_write_batch_keeps_the_list_order(adb: AsyncSapixClient, name: str) -> None:
    col = adb.collection(name)
    results = await col.write_batch([{"i": i} for i in range(30)])
    for before, after in itertools.pairwise(results):
        assert after.prev_hash == before.hash
    assert [r.id for r in await col.history()] == [r.id for r in results]
    assert [r.data["i"] for r in await col.history()] == list(range(30))
    assert await col.write_batch([]) == []


async def test_async_write_batch_is_all_or_nothing(adb: AsyncSapixClient, name: str) -> None:
    col = adb.collection(name)
    for bad, status in (({"big": BIG}, 413), ({"when": object()}, 400)):
        with pytest.raises(SapixError) as caught:
            await col.write_batch([{"i": 0}, bad, {"i": 2}])
        assert caught.value.status == status
    assert await col.strand() == []


async def test_async_graph(adb: AsyncSapixClient, name: str) -> None:
    a = await adb.collection(name).write({"n": "a"})
    b = await adb.collection(name).write({"n": "b"})
    await adb.graph.relate(a.id, b.id, "next")
    result = await adb.graph.traverse(a.id)
    assert [n.id for n in result.nodes] == [a.id, b.id]
    assert [n.id for n in await adb.graph.neighbors(a.id)] == [b.id]
    assert [(e.src, e.dst) for e in await adb.graph.edges(a.id)] == [(a.id, b.id)]
    assert await adb.graph.remove_edge(a.id, b.id, "next") is True


async def test_async_add_edges(adb: AsyncSapixClient, name: str) -> None:
    a, b, c = [await adb.collection(name).write({"n": n}) for n in "abc"]
    added = await adb.graph.add_edges([(a.id, b.id, "next", 0.5), (b.hash, c.id, "next")])
    assert [(e.src, e.dst, e.weight) for e in added] == [(a.id, b.id, 0.5), (b.id, c.id, 1.0)]
    result = await adb.graph.traverse(a.id, depth=2)
    assert [n.id for n in result.nodes] == [a.id, b.id, c.id]
    with pytest.raises(SapixError) as caught:
        await adb.graph.add_edges([(c.id, a.id, "next"), (c.id, "", "next")])
    assert caught.value.status == 400 and caught.value.message.startswith("edges[1]: ")
    assert await adb.graph.edges(c.id) == []
    assert await adb.graph.add_edges([]) == []


async def test_async_add_edges_share_commits_with_single_adds(
    adb: AsyncSapixClient, name: str
) -> None:
    hub = await adb.collection(name).write({"hub": True})
    spokes = await adb.collection(name).write_batch([{"spoke": i} for i in range(40)])
    batches = [[(hub.id, s.id, f"b{k}") for s in spokes[k::4]] for k in range(4)]
    async with anyio.create_task_group() as group:
        for batch in batches:
            group.start_soon(adb.graph.add_edges, batch)
        for spoke in spokes:
            group.start_soon(adb.graph.add_edge, spoke.id, hub.id, "single")
    outbound = {(e.dst, e.edge_type) for e in await adb.graph.edges(hub.id)}
    assert outbound == {(e[1], e[2]) for batch in batches for e in batch}
    inbound = await adb.graph.traverse(hub.id, direction="inbound")
    assert {n.id for n in inbound.nodes} == {hub.id} | {s.id for s in spokes}


async def test_async_tombstones_and_blobs(adb: AsyncSapixClient, name: str) -> None:
    col = adb.collection(name)
    r = await col.write({"sku": "z"})
    await col.delete(r.id)
    assert await col.count_current("sku") == 0
    assert (await col.restore(r.hash))["restored"] is True
    assert await col.count_current("sku") == 1
    stored = await adb.put_blob(b"abc")
    assert await adb.get_blob(stored["content_hash"]) == b"abc"
    assert (await adb.checkpoint())["status"] == "ok"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=json_values)
def test_payloads_round_trip_unchanged(db: SapixClient, payload: object) -> None:
    col = db.collection("roundtrip")
    written = col.write(payload)
    assert col.get(written.id).data == payload
    assert col.get(written.hash).hash == written.hash


@pytest.mark.parametrize("bad", ["a/b", "/lead", "trail/", "%2F"])
def test_a_slash_in_a_name_is_a_400_naming_the_rule(url: str, bad: str) -> None:
    """Over HTTP a '/' cannot split the path (it is escaped): the server names the rule."""
    with SapixClient(url=url, agent=bad) as db:
        for attempt in (
            lambda: db.collection(bad).write({"x": 1}),
            lambda: db.collection(bad).latest(),
            lambda: db.collection(bad).get("0" * 64),
            lambda: db.graph.edges("0" * 64),
        ):
            with pytest.raises(SapixError) as failure:
                attempt()
            assert (failure.value.status, failure.value.code) == (400, "INVALID_NAME")
            assert "letters, digits" in failure.value.message
