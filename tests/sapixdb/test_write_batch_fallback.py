"""``write_batch`` over HTTP: requests to ``POST /v1/agents/{A}/records/batch``, and the fallback.

The HTTP transport sends a batch in requests of at most 10,000 records and a byte budget, halves
the budget on a 413 about the request's size, and falls back to one ``POST …/records/json``
per record when the batch endpoint answers 404 or 405 (a real SapixDB), remembering that for
the client's lifetime. Our own server is served with its batch routes hidden
(:mod:`tests.sapixdb.old_server`) or with a small body limit; a mock server checks what is sent.
"""

from __future__ import annotations

import itertools
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
from sapixdb.server import ServerSettings, create_app
from sapixdb.transports.http import (
    WRITE_BATCH_BYTES,
    WRITE_CONCURRENCY,
    AsyncHTTPTransport,
    HTTPTransport,
)
from tests.sapixdb.old_server import OldServer, old_server, serve

BIG = "x" * (5 * 1024 * 1024)  # over the store's 4 MiB record limit, under the 8 MiB body limit


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


def _name() -> str:
    return f"c{uuid.uuid4().hex[:12]}"


# --- against a server without the endpoint ------------------------------------------------------


def test_sync_client_falls_back_to_single_writes_once(hits: OldServer) -> None:
    with SapixClient(url=hits.url) as db:
        col = db.collection(_name())
        written = col.write_batch([{"i": i} for i in range(5)])
        assert [col.get(w.id).data for w in written] == [{"i": i} for i in range(5)]
        for before, after in itertools.pairwise(written):
            assert after.prev_hash == before.hash  # sequential: the strand is the list's order
        assert len(hits.record_batch_hits) == 1 and len(hits.record_single_hits) == 5
        assert len(col.write_batch([{"i": 5}, {"i": 6}])) == 2
        assert col.write_batch([]) == []
        assert len(hits.record_batch_hits) == 1 and len(hits.record_single_hits) == 7  # remembered
        assert isinstance(db._transport, HTTPTransport) and db._transport.record_batch is False
        assert [r.data["i"] for r in col.history()] == list(range(7))
    with SapixClient(url=hits.url) as fresh:  # a new client asks again
        fresh.collection(_name()).write_batch([{"i": 0}])
    assert len(hits.record_batch_hits) == 2


def test_sync_fallback_stops_at_the_first_failure(hits: OldServer) -> None:
    with SapixClient(url=hits.url) as db:
        col = db.collection(_name())
        with pytest.raises(SapixError) as caught:
            col.write_batch([{"i": 0}, {"i": 1}, {"big": BIG}, {"i": 3}])
        assert (caught.value.status, caught.value.code) == (413, "PAYLOAD_TOO_LARGE")
        assert [r.data for r in col.history()] == [{"i": 0}, {"i": 1}]  # not atomic: in order
        with pytest.raises(SapixError) as unencodable:  # caught before anything is sent
            col.write_batch([{"i": 4}, {"when": object()}])
        assert (unencodable.value.status, unencodable.value.code) == (400, "INVALID_PAYLOAD")
        assert len(col.history()) == 2
    assert len(hits.record_single_hits) == 3


async def test_async_client_falls_back_to_concurrent_single_writes(hits: OldServer) -> None:
    async with AsyncSapixClient(url=hits.url) as db:
        col = db.collection(_name())
        written = await col.write_batch([{"i": i} for i in range(41)])
        assert [(await col.get(w.id)).data for w in written] == [{"i": i} for i in range(41)]
        assert len({w.hash for w in written}) == 41
        assert (await col.verify())["ok"] is True  # concurrent, yet the strand never forks
        assert len(await col.write_batch([{"i": 41}])) == 1
        assert len(hits.record_batch_hits) == 1 and len(hits.record_single_hits) == 42
        with pytest.raises(SapixError) as caught:
            await col.write_batch([{"i": 42}, {"big": BIG}])
        assert caught.value.status == 413


# --- against our server with a small body limit --------------------------------------------------


@pytest.fixture(scope="module")
def small_body_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("small-body")
    settings = ServerSettings(storage_url=f"sqlite:///{directory}/s.db", max_body_bytes=64 * 1024)
    with serve(create_app(settings)) as url:
        yield url


def test_a_small_body_limit_splits_the_batch_and_is_remembered(small_body_server: str) -> None:
    records = [{"i": i, "pad": "p" * 1000} for i in range(300)]  # about 300 KB
    with SapixClient(url=small_body_server) as db:
        col = db.collection(_name())
        written = col.write_batch(records)
        assert [r.data["i"] for r in col.history()] == list(range(300))
        assert [r.id for r in col.history()] == [w.id for w in written]
        transport = db._transport
        assert isinstance(transport, HTTPTransport)
        assert transport.record_batch is True and transport.batch_bytes <= 64 * 1024
        with pytest.raises(SapixError) as caught:  # one record over the limit: as `write`
            col.write_batch([{"i": 300}, {"pad": "p" * 70_000}])
        assert caught.value.status == 413
        assert len(col.history()) == 301  # the request before the failing one stays


async def test_async_small_body_limit_keeps_the_list_order(small_body_server: str) -> None:
    records = [{"i": i, "pad": "p" * 1000} for i in range(200)]
    async with AsyncSapixClient(url=small_body_server) as db:
        col = db.collection(_name())
        written = await col.write_batch(records)
        assert [r.id for r in await col.history()] == [w.id for w in written]
        assert [r.data["i"] for r in await col.history()] == list(range(200))


# --- a mock server: what is sent, and how many at once -----------------------------------------


def _answer(data: Any) -> dict[str, Any]:
    return {"record_id": f"r{data['i']}", "content_hash": "0" * 64}


@dataclass
class MockServer:
    """The batch endpoint answers ``batch_status`` (200: the records, unless over ``limit``
    bytes); single writes answer after a pause, 400 for ``{"bad": …}``."""

    batch_status: int = 404
    batch_body: Any = None
    limit: int | None = None
    in_flight: int = 0
    most_in_flight: int = 0
    batches: list[list[Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    singles: list[Any] = field(default_factory=list)

    def batch(self, request: httpx.Request) -> httpx.Response:
        self.sizes.append(len(request.content))
        if self.limit is not None and len(request.content) > self.limit:
            message = f"request body larger than {self.limit} bytes"
            triple = {"error": message, "message": message, "code": "PAYLOAD_TOO_LARGE"}
            return httpx.Response(413, json=triple)
        items = orjson.loads(request.content)["items"]
        self.batches.append(items)
        if self.batch_status != 200:
            body = self.batch_body or {"message": "no", "code": "NO"}
            if isinstance(body, bytes):
                return httpx.Response(self.batch_status, content=body)
            return httpx.Response(self.batch_status, json=body)
        return httpx.Response(200, json={"records": [_answer(item) for item in items]})

    def single(self, request: httpx.Request) -> httpx.Response:
        data = orjson.loads(request.content)["data"]
        self.singles.append(data)
        if "bad" in data:
            triple = {"error": "bad record", "message": "bad record", "code": "BAD_REQUEST"}
            return httpx.Response(400, json=triple)
        return httpx.Response(200, json=_answer(data))

    def sync_handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/records/batch"):
            return self.batch(request)
        return self.single(request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/records/batch"):
            return self.batch(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await anyio.sleep(0.005)
            return self.single(request)
        finally:
            self.in_flight -= 1


def _sync(mock: MockServer) -> tuple[httpx.Client, HTTPTransport]:
    http = httpx.Client(transport=httpx.MockTransport(mock.sync_handler), base_url="http://m")
    return http, HTTPTransport("http://m", client=http)


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
    written = await db.collection("c").write_batch([{"i": i} for i in range(200)])
    assert [w.id for w in written] == [f"r{i}" for i in range(200)]  # the list's order
    assert len(mock.singles) == 200 and len(mock.batches) == 1
    assert 1 < mock.most_in_flight <= WRITE_CONCURRENCY


async def test_async_fallback_sends_nothing_new_after_a_failure(
    mocked: tuple[MockServer, AsyncSapixClient],
) -> None:
    mock, db = mocked
    records = [{"i": i, "bad": True} if i in (50, 60) else {"i": i} for i in range(1000)]
    with pytest.raises(SapixError) as caught:
        await db.collection("c").write_batch(records)
    assert (caught.value.status, caught.value.code) == (400, "BAD_REQUEST")
    assert caught.value.message == "bad record"  # a single write's error, unchanged
    assert len(mock.singles) < 50 + 2 * WRITE_CONCURRENCY


def test_sync_fallback_is_sequential() -> None:
    mock = MockServer(batch_status=405)
    http, transport = _sync(mock)
    with http, SapixClient(transport=transport) as db:
        records = [{"i": i} for i in range(5)] + [{"i": 5, "bad": True}, {"i": 6}]
        with pytest.raises(SapixError) as caught:
            db.collection("c").write_batch(records)
        assert caught.value.message == "bad record"
        assert mock.singles == records[:6] and transport.record_batch is False


@pytest.mark.parametrize("status", [400, 401, 403, 409, 429, 500, 503])
def test_other_batch_errors_are_raised_not_fallen_back(status: int) -> None:
    mock = MockServer(batch_status=status)
    http, transport = _sync(mock)
    with http, SapixClient(transport=transport) as db:
        with pytest.raises(SapixError) as caught:
            db.collection("c").write_batch([{"i": 0}, {"i": 1}])
        assert caught.value.status == status
    assert mock.singles == [] and len(mock.batches) == 1 and transport.record_batch is True


def test_a_batch_goes_in_requests_of_at_most_ten_thousand_records() -> None:
    mock = MockServer(batch_status=200)
    http, transport = _sync(mock)
    with http, SapixClient(transport=transport) as db:
        written = db.collection("c").write_batch([{"i": i} for i in range(20_001)])
        assert [w.id for w in written] == [f"r{i}" for i in range(20_001)]
        assert [len(batch) for batch in mock.batches] == [10_000, 10_000, 1]
        assert db.collection("c").write_batch([]) == []
        assert len(mock.batches) == 3 and mock.singles == []


def test_a_batch_goes_in_requests_within_the_byte_budget() -> None:
    mock = MockServer(batch_status=200)
    http, transport = _sync(mock)
    assert transport.batch_bytes == WRITE_BATCH_BYTES
    transport.batch_bytes = 10_000
    with http, SapixClient(transport=transport) as db:
        records = [{"i": i, "pad": "p" * 900} for i in range(50)]  # about 920 bytes each
        written = db.collection("c").write_batch(records)
        assert [w.id for w in written] == [f"r{i}" for i in range(50)]
        assert all(size <= 10_000 for size in mock.sizes) and len(mock.sizes) == 5
        assert [item["i"] for batch in mock.batches for item in batch] == list(range(50))
        db.collection("c").write_batch([{"i": 0, "pad": "p" * 20_000}])  # alone, over budget
        assert mock.sizes[-1] > 10_000


@pytest.mark.parametrize(
    "too_large",
    [
        None,  # our server's body limit: {"message": "request body larger than N bytes"}
        b"<html><body>413 Request Entity Too Large</body></html>",  # a proxy's page
        {"message": "Payload Too Large"},
    ],
)
def test_a_413_about_the_request_size_halves_the_budget(too_large: Any) -> None:
    mock = MockServer(batch_status=200, limit=4_000)
    if too_large is not None:
        mock.limit, mock.batch_status, mock.batch_body = None, 413, too_large
    http, transport = _sync(mock)
    records = [{"i": i, "pad": "p" * 100} for i in range(100)]  # about 12 KB in all
    with http, SapixClient(transport=transport) as db:
        if too_large is None:
            written = db.collection("c").write_batch(records)
            assert [w.id for w in written] == [f"r{i}" for i in range(100)]
            assert [item["i"] for batch in mock.batches for item in batch] == list(range(100))
            assert transport.batch_bytes <= 4_000
            tried = len(mock.sizes)
            db.collection("c").write_batch(records[:30])
            assert all(size <= 4_000 for size in mock.sizes[tried:])  # remembered: no 413
        else:  # every size is refused: halved down to single records, whose 413 is raised
            with pytest.raises(SapixError) as caught:
                db.collection("c").write_batch(records)
            assert caught.value.status == 413
            assert mock.sizes == sorted(mock.sizes, reverse=True) and len(mock.batches[-1]) == 1
    assert mock.singles == []


def test_a_record_too_large_for_the_store_is_raised_without_splitting() -> None:
    message = "the record is larger than the store accepts"
    triple = {"error": message, "message": message, "code": "PAYLOAD_TOO_LARGE"}
    mock = MockServer(batch_status=413, batch_body=triple)
    http, transport = _sync(mock)
    with http, SapixClient(transport=transport) as db:
        with pytest.raises(SapixError) as caught:
            db.collection("c").write_batch([{"i": i} for i in range(10)])
        assert (caught.value.status, caught.value.message) == (413, message)
    assert len(mock.batches) == 1 and transport.batch_bytes == WRITE_BATCH_BYTES


def test_an_unencodable_record_sends_nothing() -> None:
    mock = MockServer(batch_status=200)
    http, transport = _sync(mock)
    with http, SapixClient(transport=transport) as db:
        for bad in ({"when": object()}, {"text": "\ud800"}, 2**70):
            with pytest.raises(SapixError) as caught:
                db.collection("c").write_batch([{"i": 0}, bad, {"i": 2}])
            assert (caught.value.status, caught.value.code) == (400, "INVALID_PAYLOAD")
    assert mock.sizes == [] and mock.singles == []
