"""The HTTP transport: the current SapixDB wire protocol over one pooled httpx client.

:data:`ROUTES` maps each engine operation to its method, path, query and body, so the same
:class:`~sapixdb.transports.base.Request` the embedded transport runs in-process goes over
the wire here. Every request carries ``Content-Type: application/json`` (even GET and DELETE,
as real SapixDB clients do). Streams are Server-Sent Events; heartbeats are dropped here.

``add_edges`` uses our server's batch endpoint, ``POST /v1/{G}/graph/edges`` (an extension:
a real SapixDB server has none). When a server answers it 404 or 405, the transport remembers
that for its lifetime and adds the edges one ``POST /v1/{G}/graph/edge`` at a time instead —
in order, stopping at the first failure (sync), or concurrently, :data:`EDGE_CONCURRENCY` at
a time, starting no new request after a failure (async). Edges added one by one are not
atomic: those written before a failure stay written.

``write_batch`` likewise uses our server's ``POST /v1/agents/{A}/records/batch`` (an extension
too). The records are encoded once, up front, so a record that is not JSON fails the call
before anything is sent. They go in order, in requests of at most
:data:`~sapixdb.engine.MAX_WRITE_BATCH` records and :data:`WRITE_BATCH_BYTES` bytes, each one
transaction on the server: a batch that fits one request is all or nothing; a larger one stops
at the first failing request, and the requests before it stay written. A 413 about the request's
size (a server or proxy with a smaller body limit; not our store refusing one record) halves the
byte budget, for the transport's lifetime, and resends. A server that answers the endpoint 404
or 405 gets one ``POST /v1/agents/{A}/records/json`` per record instead, remembered like the
edges: in order, stopping at the first failure (sync), or concurrently,
:data:`WRITE_CONCURRENCY` at a time, starting no new request after a failure (async).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import orjson

from sapixdb.engine import MAX_WRITE_BATCH
from sapixdb.transports.base import (
    AsyncResponse,
    AsyncTransport,
    Request,
    Response,
    Transport,
    error_body,
)

__all__ = [
    "EDGE_CONCURRENCY",
    "ROUTES",
    "WRITE_BATCH_BYTES",
    "WRITE_CONCURRENCY",
    "AsyncHTTPTransport",
    "HTTPTransport",
    "Route",
]

USER_AGENT = "sapixdb-python (decisiontrail)"
# The server heartbeats every ~15 s; four missed heartbeats mean it is gone.
STREAM_READ_TIMEOUT = 60.0
#: Single-edge requests in flight at once when a server lacks the batch edge endpoint (below
#: httpx's default pool of 100 connections, so no request waits out a pool timeout).
EDGE_CONCURRENCY = 32
#: Single writes in flight at once when a server lacks the batch write endpoint (as above).
WRITE_CONCURRENCY = 32
#: The most bytes one batch-write request body carries at first: our server's default limit.
WRITE_BATCH_BYTES = 8 * 1024 * 1024
#: How a server says it has no batch endpoint.
_NO_ENDPOINT = frozenset({404, 405})
#: In our server's 413 for one record too large for its store (not for the request's size).
_STORE_LIMIT = "larger than the store accepts"
_ITEMS_OPEN, _ITEMS_CLOSE = b'{"items":[', b"]}"


@dataclass(frozen=True, slots=True)
class Route:
    """How one operation travels: method, path, query parameters and body."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    raw_response: bool = False
    #: A non-JSON error body (a proxy's page) becomes an error triple instead of failing.
    tolerant: bool = False


def _seg(value: Any) -> str:
    """One path segment, with every reserved character escaped (a '/' cannot split it)."""
    return quote(str(value), safe="")


def _agent(args: Mapping[str, Any]) -> str:
    return f"/v1/agents/{_seg(args['agent'])}"


def _stream_route(a: Mapping[str, Any]) -> Route:
    agents = a.get("agents")
    params: dict[str, Any] = {}
    if a.get("filter_field") is not None:
        params["filter"] = a["filter_field"]
    if agents is not None and len(agents) == 1:
        if a.get("since") is not None:
            params["since"] = a["since"]
        return Route("GET", f"/v1/agents/{_seg(agents[0])}/stream", params)
    if agents is not None:
        params["agents"] = ",".join(agents)
    return Route("GET", "/v1/stream", params)


ROUTES: dict[str, Callable[[Mapping[str, Any]], Route]] = {
    "health": lambda a: Route("GET", "/v1/health"),
    "write": lambda a: Route("POST", f"{_agent(a)}/records/json", json={"data": a["data"]}),
    "write_batch": lambda a: Route(
        "POST", f"{_agent(a)}/records/batch", json={"items": list(a["items"])}
    ),
    "get": lambda a: Route("GET", f"{_agent(a)}/records/{_seg(a['ref'])}"),
    "query": lambda a: Route("POST", f"{_agent(a)}/query", json=a["body"]),
    "strand": lambda a: Route(
        "GET",
        f"{_agent(a)}/strand/records",
        {k: a[k] for k in ("limit", "offset") if a.get(k) is not None},
    ),
    "delete": lambda a: Route("DELETE", f"{_agent(a)}/records/{_seg(a['ref'])}"),
    "list_deleted": lambda a: Route("GET", f"{_agent(a)}/records/deleted"),
    "restore": lambda a: Route("POST", f"{_agent(a)}/records/{_seg(a['ref'])}/restore"),
    "verify": lambda a: Route("POST", f"{_agent(a)}/verify"),
    "add_edge": lambda a: Route(
        "POST",
        f"/v1/{_seg(a['graph'])}/graph/edge",
        json={k: a[k] for k in ("src", "dst", "edge_type", "weight")},
    ),
    "add_edges": lambda a: Route(
        "POST", f"/v1/{_seg(a['graph'])}/graph/edges", json={"edges": a["edges"]}
    ),
    "remove_edge": lambda a: Route(
        "DELETE",
        f"/v1/{_seg(a['graph'])}/graph/edge",
        json={k: a[k] for k in ("src", "dst", "edge_type")},
    ),
    "traverse": lambda a: Route(
        "GET",
        f"/v1/{_seg(a['graph'])}/graph/traverse/{_seg(a['start'])}",
        {"depth": a["depth"], "direction": a["direction"]},
    ),
    "edges": lambda a: Route("GET", f"/v1/{_seg(a['graph'])}/graph/edges/{_seg(a['node'])}"),
    "stream": _stream_route,
    "put_blob": lambda a: Route("PUT", "/v1/blobs", content=bytes(a["data"])),
    "get_blob": lambda a: Route("GET", f"/v1/blobs/{_seg(a['ref'])}", raw_response=True),
    "checkpoint": lambda a: Route("POST", "/v1/control/checkpoint"),
}


def _single_edges(request: Request) -> list[Request]:
    """``add_edges`` as one ``add_edge`` request per edge (for servers without the batch)."""
    graph = request.args["graph"]
    return [
        Request(
            "add_edge",
            {
                "graph": graph,
                "src": edge.get("src"),
                "dst": edge.get("dst"),
                "edge_type": edge.get("edge_type", "related"),
                "weight": edge.get("weight", 1.0),
            },
        )
        for edge in request.args["edges"]
    ]


def _joined_edges(singles: Sequence[Request], bodies: Sequence[Any]) -> dict[str, Any]:
    """The batch answer ``{"edges": […]}`` from single answers (what was sent fills gaps)."""
    edges = []
    for single, body in zip(singles, bodies, strict=True):
        sent = {k: single.args[k] for k in ("src", "dst", "edge_type", "weight")}
        edges.append({**sent, **body} if isinstance(body, dict) else sent)
    return {"edges": edges}


def _edge_failure(index: int, body: Any) -> Any:
    """A single edge's error body, its message prefixed ``edges[i]: `` as the batch's are."""
    if not isinstance(body, dict):
        return body
    prefixed = {
        k: f"edges[{index}]: {body[k]}"
        for k in ("error", "message")
        if isinstance(body.get(k), str)
    }
    return {**body, **prefixed}


def _encoded_items(request: Request) -> list[bytes]:
    """Each record of a ``write_batch`` as JSON (raises if one is not JSON-serialisable)."""
    return [orjson.dumps(item) for item in request.args["items"]]


def _chunk_end(encoded: Sequence[bytes], start: int, budget: int) -> int:
    """Where the request starting at ``start`` ends: as many records as fit, at least one."""
    end = start + 1
    size = len(_ITEMS_OPEN) + len(encoded[start]) + len(_ITEMS_CLOSE)
    last = min(len(encoded), start + MAX_WRITE_BATCH)
    while end < last:
        size += 1 + len(encoded[end])  # the comma, the record
        if size > budget:
            break
        end += 1
    return end


def _batch_route(args: Mapping[str, Any], encoded: Sequence[bytes]) -> Route:
    """One batch-write request for already encoded records."""
    content = _ITEMS_OPEN + b",".join(encoded) + _ITEMS_CLOSE
    return Route("POST", f"{_agent(args)}/records/batch", content=content, tolerant=True)


def _single_routes(args: Mapping[str, Any], encoded: Sequence[bytes]) -> list[Route]:
    """One ``POST …/records/json`` per encoded record (for servers without the batch)."""
    path = f"{_agent(args)}/records/json"
    return [Route("POST", path, content=b'{"data":' + item + b"}") for item in encoded]


def _too_large_a_request(status: int, body: Any) -> bool:
    """A 413 about the request's size (a body limit), not about a record the store refuses."""
    if status != 413:
        return False
    message = body.get("message") if isinstance(body, dict) else None
    return not (isinstance(message, str) and _STORE_LIMIT in message)


def _records_of(body: Any) -> list[Any]:
    records = body.get("records") if isinstance(body, dict) else None
    return records if isinstance(records, list) else []


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _build(
    client: httpx.Client | httpx.AsyncClient, route: Route, stream: bool, headers: dict[str, str]
) -> httpx.Request:
    content = route.content
    if content is None and route.json is not None:
        content = orjson.dumps(route.json)
    # Only a stream names its own timeout: a client passed in may be another httpx-compatible
    # client (Starlette's TestClient on httpx2) that refuses httpx's USE_CLIENT_DEFAULT marker.
    options: dict[str, Any] = {}
    if stream:
        options["timeout"] = httpx.Timeout(client.timeout.connect, read=STREAM_READ_TIMEOUT)
    return client.build_request(
        route.method, route.path, params=route.params, content=content, headers=headers,
        **options,
    )  # fmt: skip


def _body(route: Route, status: int, raw: bytes) -> Any:
    if route.raw_response and 200 <= status < 300:
        return raw
    if route.tolerant and not 200 <= status < 300:
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return error_body(f"HTTP {status}", "HTTP_ERROR")
    return orjson.loads(raw) if raw else {}


class _SSEParser:
    """Turns SSE lines into ``(event, data)`` pairs (data parsed as JSON)."""

    def __init__(self) -> None:
        self.event = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str, Any] | None:
        if line == "":
            if not self.data:
                self.event = "message"
                return None
            event, data = self.event, "\n".join(self.data)
            self.event, self.data = "message", []
            return event, orjson.loads(data)
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None


def _events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    parser = _SSEParser()
    for line in lines:
        frame = parser.feed(line)
        if frame is not None and frame[0] != "heartbeat" and isinstance(frame[1], dict):
            yield frame[1]


class HTTPTransport(Transport):
    """Talks to a SapixDB server (or ``python -m sapixdb.server``) at ``url``."""

    #: ``write_batch`` is one operation here (batch requests, or the fallback to single writes).
    supports_batch = True

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._owns_client = client is None
        self._client = client or httpx.Client(base_url=url, timeout=timeout)
        # Per-request headers: a client passed in (shared, or a test client) stays untouched.
        self._headers = _headers(api_key)
        #: False once the server answered the batch edge endpoint 404 or 405.
        self.edge_batch = True
        #: False once the server answered the batch write endpoint 404 or 405.
        self.record_batch = True
        #: The most bytes a batch-write request carries (halved by each 413 about the size).
        self.batch_bytes = WRITE_BATCH_BYTES

    def handle(self, request: Request) -> Response:
        if request.operation == "add_edges":
            return self._add_edges(request)
        if request.operation == "write_batch":
            return self._write_batch(request)
        return self._send(request)

    def _write_batch(self, request: Request) -> Response:
        encoded = _encoded_items(request)
        written: list[Any] = []
        start = 0
        while self.record_batch and start < len(encoded):
            end = _chunk_end(encoded, start, self.batch_bytes)
            route = _batch_route(request.args, encoded[start:end])
            response = self._exchange(route)
            if response.status in _NO_ENDPOINT and start == 0:
                self.record_batch = False
                break
            if _too_large_a_request(response.status, response.body) and end - start > 1:
                self.batch_bytes = min(self.batch_bytes, len(route.content or b"") // 2)
                continue
            if not 200 <= response.status < 300:
                return response
            written.extend(_records_of(response.body))
            start = end
        for route in _single_routes(request.args, encoded[start:]):
            response = self._exchange(route)
            if not 200 <= response.status < 300:
                return response
            written.append(response.body)
        return Response(200, {"records": written})

    def _add_edges(self, request: Request) -> Response:
        if self.edge_batch:
            response = self._send(request)
            if response.status not in _NO_ENDPOINT:
                return response
            self.edge_batch = False
        singles = _single_edges(request)
        bodies = []
        for index, single in enumerate(singles):
            response = self._send(single)
            if not 200 <= response.status < 300:
                return Response(response.status, _edge_failure(index, response.body))
            bodies.append(response.body)
        return Response(200, _joined_edges(singles, bodies))

    def _send(self, request: Request) -> Response:
        route = ROUTES[request.operation](request.args)
        return self._exchange(route, stream=request.operation == "stream")

    def _exchange(self, route: Route, *, stream: bool = False) -> Response:
        response = self._client.send(
            _build(self._client, route, stream, self._headers), stream=True
        )
        if not stream or response.status_code != 200:
            try:
                raw = response.read()
            finally:
                response.close()
            return Response(response.status_code, _body(route, response.status_code, raw))
        return Response(200, events=self._iterate(response))

    @staticmethod
    def _iterate(response: httpx.Response) -> Iterator[dict[str, Any]]:
        try:
            yield from _events(response.iter_lines())
        finally:
            response.close()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class AsyncHTTPTransport(AsyncTransport):
    """The async twin of :class:`HTTPTransport`: a pooled ``httpx.AsyncClient`` per event loop.

    An async connection is bound to the event loop that opened it, and one transport often
    outlives its loop: a module-level client in a FastAPI app exercised by ``TestClient``
    without ``with`` (a loop per request), pytest-asyncio's loop per test, several
    ``asyncio.run`` in a row. So each running loop gets a pool of its own, made on first use
    there and dropped with its loop (a closed loop's pool cannot be closed politely; its
    sockets are released with it). A ``client`` passed in is used as it is, on every loop.
    """

    supports_batch = True

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns_client = client is None
        self._url = url
        self._timeout = timeout
        self._given = client
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._pools = weakref.WeakKeyDictionary()
        self._closed = False
        try:  # made on a running loop: its pool now, as a client made there always had
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass  # made outside any loop (a module-level client): pools come with use
        else:
            if client is None:
                self._pools[loop] = httpx.AsyncClient(base_url=url, timeout=timeout)
        # Per-request headers: a client passed in (shared, or a test client) stays untouched.
        self._headers = _headers(api_key)
        #: False once the server answered the batch edge endpoint 404 or 405.
        self.edge_batch = True
        #: False once the server answered the batch write endpoint 404 or 405.
        self.record_batch = True
        #: The most bytes a batch-write request carries (halved by each 413 about the size).
        self.batch_bytes = WRITE_BATCH_BYTES

    async def handle(self, request: Request) -> AsyncResponse:
        if request.operation == "add_edges":
            return await self._add_edges(request)
        if request.operation == "write_batch":
            return await self._write_batch(request)
        return await self._send(request)

    async def _write_batch(self, request: Request) -> AsyncResponse:
        encoded = _encoded_items(request)
        written: list[Any] = []
        start = 0
        while self.record_batch and start < len(encoded):
            end = _chunk_end(encoded, start, self.batch_bytes)
            route = _batch_route(request.args, encoded[start:end])
            response = await self._exchange(route)
            if response.status in _NO_ENDPOINT and start == 0:
                self.record_batch = False
                break
            if _too_large_a_request(response.status, response.body) and end - start > 1:
                self.batch_bytes = min(self.batch_bytes, len(route.content or b"") // 2)
                continue
            if not 200 <= response.status < 300:
                return response
            written.extend(_records_of(response.body))
            start = end
        singles = _single_routes(request.args, encoded[start:])
        bodies, failure = await self._each(singles, WRITE_CONCURRENCY)
        if failure is not None:
            return failure[1]
        return AsyncResponse(200, {"records": [*written, *bodies]})

    async def _add_edges(self, request: Request) -> AsyncResponse:
        if self.edge_batch:
            response = await self._send(request)
            if response.status not in _NO_ENDPOINT:
                return response
            self.edge_batch = False
        singles = _single_edges(request)
        routes = [ROUTES[single.operation](single.args) for single in singles]
        bodies, failure = await self._each(routes, EDGE_CONCURRENCY)
        if failure is not None:
            index, answer = failure
            return AsyncResponse(answer.status, _edge_failure(index, answer.body))
        return AsyncResponse(200, _joined_edges(singles, bodies))

    async def _each(
        self, routes: Sequence[Route], concurrency: int
    ) -> tuple[list[Any], tuple[int, AsyncResponse] | None]:
        """Send ``routes`` concurrently, ``concurrency`` at a time, none new after a failure.

        Returns the answers' bodies in order, or else the first failure in order (its index
        and answer); an exception in the first failing place is raised instead.
        """
        answers: list[AsyncResponse | Exception | None] = [None] * len(routes)
        limiter = anyio.CapacityLimiter(concurrency)
        failed = False

        async def one(index: int) -> None:
            nonlocal failed
            async with limiter:
                if failed:
                    return  # an earlier request failed: send no more
                try:
                    answer = await self._exchange(routes[index])
                except Exception as exc:
                    answers[index], failed = exc, True
                    return
                answers[index] = answer
                failed = failed or not 200 <= answer.status < 300

        async with anyio.create_task_group() as group:
            for index in range(len(routes)):
                group.start_soon(one, index)
        # The first failure in order wins; requests skipped after it have no answer.
        bodies = []
        for index, answer in enumerate(answers):
            if isinstance(answer, Exception):
                raise answer
            if answer is not None and not 200 <= answer.status < 300:
                return [], (index, answer)
            if answer is not None:
                bodies.append(answer.body)
        return bodies, None

    async def _send(self, request: Request) -> AsyncResponse:
        route = ROUTES[request.operation](request.args)
        return await self._exchange(route, stream=request.operation == "stream")

    @property
    def _client(self) -> httpx.AsyncClient:
        """The pool of the running event loop (or the client passed in)."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            if self._closed:  # as httpx says it of a closed client
                raise RuntimeError("Cannot send a request, as the client has been closed.")
            for stale in [other for other in self._pools if other.is_closed()]:
                del self._pools[stale]
            pool = httpx.AsyncClient(base_url=self._url, timeout=self._timeout)
            self._pools[loop] = pool
        return pool

    async def _exchange(self, route: Route, *, stream: bool = False) -> AsyncResponse:
        client = self._client
        response = await client.send(_build(client, route, stream, self._headers), stream=True)
        if not stream or response.status_code != 200:
            try:
                raw = await response.aread()
            finally:
                await response.aclose()
            return AsyncResponse(response.status_code, _body(route, response.status_code, raw))
        return AsyncResponse(200, events=self._iterate(response))

    @staticmethod
    async def _iterate(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        parser = _SSEParser()
        try:
            async for line in response.aiter_lines():
                frame = parser.feed(line)
                if frame is not None and frame[0] != "heartbeat" and isinstance(frame[1], dict):
                    yield frame[1]
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if not self._owns_client:
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # not on asyncio (trio): nothing was pooled per loop
            loop = None
        self._closed = True
        pools, self._pools = dict(self._pools), weakref.WeakKeyDictionary()
        for owner, pool in pools.items():
            if owner is loop:
                await pool.aclose()
            # Another loop's pool can only be closed on that loop; it goes with it.
