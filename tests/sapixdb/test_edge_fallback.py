"""``add_edges`` against a server without ``POST /v1/{G}/graph/edges`` (a real SapixDB).

The HTTP transport falls back to one ``POST /v1/{G}/graph/edge`` per edge when the batch
endpoint answers 404 or 405, and remembers that for the client's lifetime. Here our own server
is served with its batch routes hidden (:mod:`tests.sapixdb.old_server`), and a mock server
checks the fallback's concurrency.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from sapixdb import AsyncSapixClient, SapixClient, SapixError
from sapixdb.transports.http import EDGE_CONCURRENCY, AsyncHTTPTransport, HTTPTransport
from tests.sapixdb.old_server import OldServer, old_server


@pytest.fixture(scope="module", params=[404, 405])
def old(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OldServer]:
    directory: Path = tmp_path_factory.mktemp("old-server")
    with old_server(directory, request.param) as served:
        yield served


@pytest.fixture
def hits(old: OldServer) -> OldServer:
    old.clear()
    return old


def _graph() -> str:
    return f"g{uuid.uuid4().hex[:12]}"


def test_sync_client_falls_back_to_single_edges_once(hits: OldServer) -> None:
    with SapixClient(url=hits.url, agent=_graph()) as db:
        a, b, c = (db.collection("nodes").write({"n": n}) for n in "abc")
        added = db.graph.add_edges([(a.id, b.hash, "next", 0.5), (b.id, c.id, "next")])
        assert [(e.src, e.dst, e.edge_type, e.weight) for e in added] == [
            (a.id, b.id, "next", 0.5),  # the server's answer: the hash resolved to the id
            (b.id, c.id, "next", 1.0),
        ]
        assert hits.batch_hits and len(hits.single_hits) == 2
        assert db.graph.add_edges([(c.id, a.id, "loop")])[0].dst == a.id
        assert db.graph.add_edges([]) == []
        assert len(hits.batch_hits) == 1 and len(hits.single_hits) == 3  # remembered
        result = db.graph.traverse(a.id, depth=3)
        assert [n.id for n in result.nodes] == [a.id, b.id, c.id]
    with SapixClient(url=hits.url, agent=_graph()) as fresh:  # a new client asks again
        fresh.graph.add_edges([(a.id, b.id, "next")])
    assert len(hits.batch_hits) == 2


def test_sync_fallback_stops_at_the_first_bad_edge(hits: OldServer) -> None:
    with SapixClient(url=hits.url, agent=_graph()) as db:
        edges = [("a", "b", "t"), ("a", "c", "t"), ("a", "", "t"), ("a", "d", "t")]
        with pytest.raises(SapixError) as caught:
            db.graph.add_edges(edges)
        assert caught.value.status == 400
        assert caught.value.message.startswith("edges[2]: dst must be")
        assert [e.dst for e in db.graph.edges("a")] == ["b", "c"]  # not atomic: sent in order
        with pytest.raises(SapixError) as limited:  # the same limit as the batch endpoint
            db.graph.add_edges([("a", "b", "t")] * 10_001)
        assert limited.value.code == "TOO_MANY_EDGES"
    assert len(hits.single_hits) == 3


async def test_async_client_falls_back_to_concurrent_single_edges(hits: OldServer) -> None:
    async with AsyncSapixClient(url=hits.url, agent=_graph()) as db:
        nodes = await db.collection("nodes").write_batch([{"n": n} for n in range(41)])
        hub, spokes = nodes[0], nodes[1:]
        edges = [(hub.id, s.hash, f"t{i}", float(i)) for i, s in enumerate(spokes)]
        added = await db.graph.add_edges(edges)
        assert [(e.dst, e.edge_type, e.weight) for e in added] == [
            (s.id, f"t{i}", float(i)) for i, s in enumerate(spokes)
        ]
        assert await db.graph.add_edges([(spokes[0].id, hub.id, "back")]) != []
        assert len(hits.batch_hits) == 1 and len(hits.single_hits) == 41
        assert len(await db.graph.edges(hub.id)) == 40
        with pytest.raises(SapixError) as caught:
            await db.graph.add_edges([(hub.id, spokes[0].id, "x"), (hub.id, spokes[1].id, "")])
        assert caught.value.status == 400 and caught.value.message.startswith("edges[1]: ")


# --- a mock server: what the fallback sends, and how many at once -------------------------------


@dataclass
class MockServer:
    """Answers the batch endpoint ``batch_status``; single edges with ``{}`` after a pause."""

    batch_status: int = 404
    in_flight: int = 0
    most_in_flight: int = 0
    singles: list[dict[str, Any]] = field(default_factory=list)

    def single(self, request: httpx.Request) -> httpx.Response:
        edge = orjson.loads(request.content)
        self.singles.append(edge)
        if edge["dst"] == "bad":
            triple = {"error": "dst is bad", "message": "dst is bad", "code": "BAD_REQUEST"}
            return httpx.Response(400, json=triple)
        return httpx.Response(200, json={})  # a server that says nothing about the edge

    def sync_handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/graph/edges"):
            return httpx.Response(self.batch_status, json={"message": "no", "code": "NO"})
        return self.single(request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/graph/edges"):
            return httpx.Response(self.batch_status, json={"message": "no", "code": "NO"})
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await anyio.sleep(0.005)
            return self.single(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def mocked() -> AsyncIterator[tuple[MockServer, AsyncSapixClient]]:
    mock = MockServer()
    http = httpx.AsyncClient(transport=httpx.MockTransport(mock.async_handler), base_url="http://m")
    async with http, AsyncSapixClient(transport=AsyncHTTPTransport("http://m", client=http)) as db:
        yield mock, db


async def test_async_fallback_is_concurrent_but_bounded(
    mocked: tuple[MockServer, AsyncSapixClient],
) -> None:
    mock, db = mocked
    edges = [(f"s{i}", f"d{i}", "t") for i in range(200)]
    added = await db.graph.add_edges(edges)
    # The server answered {}: what was sent fills in the edges, in order.
    assert [(e.src, e.dst, e.edge_type, e.weight) for e in added] == [
        (s, d, t, 1.0) for s, d, t in edges
    ]
    assert len(mock.singles) == 200
    assert 1 < mock.most_in_flight <= EDGE_CONCURRENCY


async def test_async_fallback_sends_nothing_new_after_a_failure(
    mocked: tuple[MockServer, AsyncSapixClient],
) -> None:
    mock, db = mocked
    edges = [(f"s{i}", "bad" if i in (50, 60) else f"d{i}", "t") for i in range(1000)]
    with pytest.raises(SapixError) as caught:
        await db.graph.add_edges(edges)
    assert (caught.value.status, caught.value.code) == (400, "BAD_REQUEST")
    assert caught.value.message == "edges[50]: dst is bad"  # the first failure in edge order
    assert len(mock.singles) < 50 + 2 * EDGE_CONCURRENCY


def test_sync_fallback_is_sequential_and_fills_in_answers() -> None:
    mock = MockServer(batch_status=405)
    http = httpx.Client(transport=httpx.MockTransport(mock.sync_handler), base_url="http://m")
    transport = HTTPTransport("http://m", client=http)
    with http, SapixClient(transport=transport) as db:
        edges = [(f"s{i}", f"d{i}", "t", i / 2) for i in range(5)]
        added = db.graph.add_edges(edges)
        assert [(e.src, e.dst, e.edge_type, e.weight) for e in added] == edges
        assert [(e["src"], e["dst"]) for e in mock.singles] == [(s, d) for s, d, _, _ in edges]
        assert transport.edge_batch is False


@pytest.mark.parametrize("status", [400, 401, 403, 413, 429, 500, 503])
def test_other_batch_errors_are_raised_not_fallen_back(status: int) -> None:
    mock = MockServer(batch_status=status)
    http = httpx.Client(transport=httpx.MockTransport(mock.sync_handler), base_url="http://m")
    transport = HTTPTransport("http://m", client=http)
    with http, SapixClient(transport=transport) as db:
        with pytest.raises(SapixError) as caught:
            db.graph.add_edges([("a", "b", "t")])
        assert caught.value.status == status
    assert mock.singles == [] and transport.edge_batch is True
