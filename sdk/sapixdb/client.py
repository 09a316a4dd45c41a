"""``SapixClient`` and ``AsyncSapixClient``: the seed API over either transport.

Everything that does no I/O — choosing the transport, building requests, decoding answers,
mapping errors — lives once in :class:`_ClientBase` and the :class:`_Call` objects it builds;
the sync and async classes only run those calls (``_run``), one line per method. Errors are
mapped at one boundary (:func:`map_error` and :meth:`_ClientBase._decode`): an error status
becomes :class:`SapixError` (404 → :class:`SapixNotFoundError`, 429 →
:class:`SapixRateLimitError`), and every httpx or ledgerstore exception becomes the error
:data:`ERROR_MAP` names (connection failures → :class:`SapixNetworkError`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NoReturn, Self, TypeVar

import anyio
import httpx
import orjson

import ledgerstore
from sapixdb.engine import MAX_EDGE_BATCH, too_many_edges
from sapixdb.exceptions import (
    SapixError,
    SapixNetworkError,
    SapixNotFoundError,
    SapixRateLimitError,
)
from sapixdb.filters import get_path
from sapixdb.hlc import to_hlc
from sapixdb.models import GraphEdge, Record, StreamEvent, TraverseResult, WriteResult
from sapixdb.transports.base import AsyncTransport, Request, Transport
from sapixdb.transports.embedded import AsyncEmbeddedTransport, EmbeddedTransport
from sapixdb.transports.http import AsyncHTTPTransport, HTTPTransport

__all__ = [
    "ERROR_MAP",
    "AsOfQuery",
    "AsyncAsOfQuery",
    "AsyncCollection",
    "AsyncGraph",
    "AsyncSapixClient",
    "Collection",
    "EdgeSpec",
    "Graph",
    "SapixClient",
    "map_error",
]

T = TypeVar("T")
Filter = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
TimeRef = str | datetime | int
#: One edge for ``add_edges``: ``(from_id, to_id, edge_type)`` or with a weight last.
EdgeSpec = tuple[str, str, str] | tuple[str, str, str, float]

DEFAULT_LIMIT = 20
HISTORY_LIMIT = 1000


# --- error mapping: the one boundary ------------------------------------------------------


def _network(exc: Exception) -> SapixError:
    return SapixNetworkError(f"could not reach SapixDB: {type(exc).__name__}", exc)


def _client_bug(exc: Exception) -> SapixError:
    return SapixError(f"the request could not be sent: {exc}", None, "CLIENT_ERROR")


def _status(status: int, code: str) -> Callable[[Exception], SapixError]:
    return lambda exc: SapixError(str(exc), status, code)


def _closed(exc: Exception) -> SapixError:
    return SapixError("the client is closed", None, "CLOSED")


def _unencodable(exc: Exception) -> SapixError:
    return SapixError(f"payload is not JSON-serialisable: {exc}", 400, "INVALID_PAYLOAD")


def _bad_response(exc: Exception) -> SapixError:
    return SapixError("the server sent a body that is not valid JSON", None, "INVALID_RESPONSE")


#: Every lower-level exception type the transports can raise, and the SapixError it becomes.
ERROR_MAP: dict[type[BaseException], Callable[[Exception], SapixError]] = {
    # httpx: transport failures are network errors; misuse is a client error.
    httpx.HTTPError: _network,
    httpx.RequestError: _network,
    httpx.TransportError: _network,
    httpx.TimeoutException: _network,
    httpx.ConnectTimeout: _network,
    httpx.ReadTimeout: _network,
    httpx.WriteTimeout: _network,
    httpx.PoolTimeout: _network,
    httpx.NetworkError: _network,
    httpx.ConnectError: _network,
    httpx.ReadError: _network,
    httpx.WriteError: _network,
    httpx.CloseError: _network,
    httpx.ProtocolError: _network,
    httpx.LocalProtocolError: _network,
    httpx.RemoteProtocolError: _network,
    httpx.ProxyError: _network,
    httpx.DecodingError: _network,
    httpx.UnsupportedProtocol: _client_bug,
    httpx.TooManyRedirects: _network,
    httpx.HTTPStatusError: _network,
    httpx.InvalidURL: _client_bug,
    httpx.CookieConflict: _client_bug,
    httpx.StreamError: _client_bug,
    httpx.StreamConsumed: _client_bug,
    httpx.StreamClosed: _client_bug,
    httpx.ResponseNotRead: _client_bug,
    httpx.RequestNotRead: _client_bug,
    orjson.JSONDecodeError: _bad_response,
    orjson.JSONEncodeError: _unencodable,
    # ledgerstore (embedded): its PEP 249-style tree, one for one.
    ledgerstore.LedgerStoreError: _status(500, "STORAGE_ERROR"),
    ledgerstore.InterfaceError: _status(400, "BAD_REQUEST"),
    ledgerstore.StoreClosedError: _closed,
    ledgerstore.InvalidArgumentError: _status(400, "BAD_REQUEST"),
    ledgerstore.InvalidEntryError: _status(400, "BAD_REQUEST"),
    ledgerstore.PayloadTooLargeError: _status(413, "PAYLOAD_TOO_LARGE"),
    ledgerstore.UnknownLogError: _status(404, "NOT_FOUND"),
    ledgerstore.DatabaseError: _status(500, "STORAGE_ERROR"),
    ledgerstore.OperationalError: _network,
    ledgerstore.IntegrityError: _status(409, "CONFLICT"),
    ledgerstore.DataError: _status(400, "BAD_REQUEST"),
    ledgerstore.ProgrammingError: _status(500, "STORAGE_ERROR"),
    ledgerstore.InternalError: _status(500, "STORAGE_ERROR"),
    ledgerstore.NotSupportedError: _status(500, "STORAGE_ERROR"),
}


def map_error(exc: Exception) -> SapixError | None:
    """The SapixError for a lower-level exception (by its nearest mapped class), or None."""
    if isinstance(exc, SapixError):
        return exc
    for cls in type(exc).__mro__:
        mapper = ERROR_MAP.get(cls)
        if mapper is not None:
            return mapper(exc)
    return None


# --- calls: requests and how to decode their answers (no I/O) --------------------------------


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    request: Request
    parse: Callable[[Any], T]


def _filter_spec(filter: Filter) -> list[dict[str, Any]] | None:
    """The wire filter: a dict is equality on every key (AND); a list passes through."""
    if filter is None:
        return None
    if isinstance(filter, Mapping):
        if not filter:
            return None
        if "field" in filter and "op" in filter:
            return [dict(filter)]
        return [{"field": key, "op": "eq", "value": value} for key, value in filter.items()]
    return [dict(condition) for condition in filter]


def _write_results(body: Any) -> list[WriteResult]:
    """The engine's list of write responses, or the wire's ``{"records": […]}``."""
    written = body.get("records", []) if isinstance(body, dict) else body
    return [WriteResult.from_wire(w) for w in written if isinstance(w, dict)]


def _records(body: Any) -> list[Record]:
    return [Record.from_wire(r) for r in body.get("records", []) if isinstance(r, dict)]


def _first(body: Any) -> Record | None:
    records = _records(body)
    return records[0] if records else None


def _reversed(body: Any) -> list[Record]:
    """Records in the opposite order: scans come newest first, as_of oldest first."""
    return list(reversed(_records(body)))


def _hlc(value: TimeRef) -> int:
    try:
        return to_hlc(value)
    except ValueError as exc:
        raise SapixError(str(exc), 400, "INVALID_ARGUMENT") from None


class _Calls:
    """Builds every call of the seed API."""

    @staticmethod
    def health() -> _Call[dict[str, Any]]:
        return _Call(Request("health"), dict)

    @staticmethod
    def write(agent: str, data: Any) -> _Call[WriteResult]:
        return _Call(Request("write", {"agent": agent, "data": data}), WriteResult.from_wire)

    @staticmethod
    def write_batch(agent: str, items: list[Any]) -> _Call[list[WriteResult]]:
        return _Call(Request("write_batch", {"agent": agent, "items": items}), _write_results)

    @staticmethod
    def get(agent: str, ref: str) -> _Call[Record]:
        return _Call(Request("get", {"agent": agent, "ref": ref}), Record.from_wire)

    @staticmethod
    def query(agent: str, body: dict[str, Any], parse: Callable[[Any], T]) -> _Call[T]:
        return _Call(Request("query", {"agent": agent, "body": body}), parse)

    @classmethod
    def latest(cls, agent: str, filter: Filter, limit: int) -> _Call[list[Record]]:
        spec = _filter_spec(filter)
        if spec is None:
            return cls.query(agent, {"type": "latest", "limit": limit}, _records)
        return cls.query(agent, {"type": "scan", "limit": limit, "filter": spec}, _records)

    @classmethod
    def find(cls, agent: str, filter: Filter, limit: int) -> _Call[list[Record]]:
        body = {"type": "scan", "limit": limit, "filter": _filter_spec(filter)}
        return cls.query(agent, body, _records)

    @classmethod
    def find_one(cls, agent: str, filter: Filter) -> _Call[Record | None]:
        body = {"type": "scan", "limit": 1, "filter": _filter_spec(filter)}
        return cls.query(agent, body, _first)

    @classmethod
    def history(cls, agent: str, filter: Filter, limit: int) -> _Call[list[Record]]:
        body = {"type": "scan", "limit": limit, "filter": _filter_spec(filter)}
        return cls.query(agent, body, _reversed)

    @classmethod
    def as_of(
        cls, agent: str, hlc: int, filter: Filter, limit: int, parse: Callable[[Any], T]
    ) -> _Call[T]:
        spec = _filter_spec(filter)
        body = {"type": "as_of", "timestamp_hlc": hlc, "limit": limit, "filter": spec}
        return cls.query(agent, body, _locally_filtered(spec, parse))

    @classmethod
    def current(cls, agent: str, key: str, filter: Filter, limit: int) -> _Call[list[Record]]:
        body = {"type": "current", "key": key, "limit": limit, "filter": _filter_spec(filter)}
        return cls.query(agent, body, _records)

    @classmethod
    def count_current(cls, agent: str, key: str, filter: Filter) -> _Call[int]:
        body = {"type": "count_current", "key": key, "filter": _filter_spec(filter)}
        return cls.query(agent, body, lambda b: int(b.get("count", 0)))

    @staticmethod
    def strand(agent: str, limit: int, offset: int) -> _Call[list[Record]]:
        args = {"agent": agent, "limit": limit, "offset": offset}
        return _Call(Request("strand", args), _records)

    @staticmethod
    def delete(agent: str, ref: str) -> _Call[WriteResult]:
        return _Call(Request("delete", {"agent": agent, "ref": ref}), WriteResult.from_wire)

    @staticmethod
    def deleted(agent: str) -> _Call[list[dict[str, Any]]]:
        return _Call(Request("list_deleted", {"agent": agent}), lambda b: list(b["records"]))

    @staticmethod
    def restore(agent: str, ref: str) -> _Call[dict[str, Any]]:
        return _Call(Request("restore", {"agent": agent, "ref": ref}), dict)

    @staticmethod
    def verify(agent: str) -> _Call[dict[str, Any]]:
        return _Call(Request("verify", {"agent": agent}), dict)

    @staticmethod
    def add_edge(graph: str, src: str, dst: str, edge_type: str, weight: float) -> _Call[GraphEdge]:
        args = {"graph": graph, "src": src, "dst": dst, "edge_type": edge_type, "weight": weight}
        return _Call(Request("add_edge", args), GraphEdge.from_wire)

    @staticmethod
    def add_edges(graph: str, edges: Sequence[EdgeSpec]) -> _Call[list[GraphEdge]]:
        items = [_edge_item(index, edge) for index, edge in enumerate(edges)]
        if len(items) > MAX_EDGE_BATCH:  # the engine checks too; a fallback would not
            raise too_many_edges()
        return _Call(
            Request("add_edges", {"graph": graph, "edges": items}),
            lambda b: [GraphEdge.from_wire(e) for e in b.get("edges", [])],
        )

    @staticmethod
    def remove_edge(graph: str, src: str, dst: str, edge_type: str) -> _Call[bool]:
        args = {"graph": graph, "src": src, "dst": dst, "edge_type": edge_type}
        return _Call(Request("remove_edge", args), lambda b: bool(b.get("removed", True)))

    @staticmethod
    def traverse(graph: str, start: str, depth: int, direction: str) -> _Call[TraverseResult]:
        args = {"graph": graph, "start": start, "depth": depth, "direction": direction}
        return _Call(Request("traverse", args), TraverseResult.from_wire)

    @classmethod
    def neighbors(cls, graph: str, node: str, direction: str) -> _Call[list[Record]]:
        call = cls.traverse(graph, node, 1, direction)
        return _Call(
            call.request,
            lambda b: [n for n in call.parse(b).nodes if n.record_id != node],
        )

    @staticmethod
    def edges(graph: str, node: str) -> _Call[list[GraphEdge]]:
        return _Call(
            Request("edges", {"graph": graph, "node": node}),
            lambda b: [GraphEdge.from_wire(e) for e in b.get("edges", [])],
        )

    @staticmethod
    def put_blob(data: bytes) -> _Call[dict[str, Any]]:
        return _Call(Request("put_blob", {"data": data}), dict)

    @staticmethod
    def get_blob(ref: str) -> _Call[bytes]:
        return _Call(Request("get_blob", {"ref": ref}), bytes)

    @staticmethod
    def checkpoint() -> _Call[dict[str, Any]]:
        return _Call(Request("checkpoint"), dict)

    @staticmethod
    def stream(
        agents: Sequence[str] | None, since: TimeRef | None, filter_field: str | None
    ) -> Request:
        hlc = None if since is None else _hlc(since)
        names = None if agents is None else list(agents)
        return Request("stream", {"agents": names, "since": hlc, "filter_field": filter_field})


def _edge_item(index: int, edge: Any) -> dict[str, Any]:
    """The wire item ``{src, dst, edge_type, weight?}`` of one ``add_edges`` tuple.

    Only the shape is checked here; the engine validates the values, as for ``add_edge``.
    """
    if isinstance(edge, str | bytes) or not isinstance(edge, Sequence) or len(edge) not in (3, 4):
        raise SapixError(
            f"edges[{index}] must be (from_id, to_id, edge_type) or "
            "(from_id, to_id, edge_type, weight)",
            400,
            "INVALID_ARGUMENT",
        )
    item = {"src": edge[0], "dst": edge[1], "edge_type": edge[2]}
    if len(edge) == 4:
        item["weight"] = edge[3]
    return item


def _matches(spec: list[dict[str, Any]], record: Record) -> bool:
    payload = record.payload
    for condition in spec:
        if condition.get("op", "eq") != "eq":
            continue  # only the server evaluates other operators
        if get_path(payload, str(condition["field"])) != condition["value"]:
            return False  # a dotted field is a path, as on the server
    return True


def _locally_filtered(
    spec: list[dict[str, Any]] | None, parse: Callable[[Any], T]
) -> Callable[[Any], T]:
    """Re-apply equality filters client-side: a server that ignores as_of filters is safe."""
    if not spec:
        return parse

    def run(body: Any) -> T:
        kept = [r for r in body.get("records", []) if _matches(spec, Record.from_wire(r))]
        return parse({**body, "records": kept})

    return run


# --- the shared base ------------------------------------------------------------------------


class _ClientBase:
    """Configuration, transport choice and answer decoding, shared by both clients."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        agent: str = "default",
        timeout: float = 30.0,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        if (url is None) == (path is None):
            raise SapixError("give exactly one of url= or path=", None, "INVALID_ARGUMENT")
        self.url = url
        self.path = path
        self.agent = agent
        self.timeout = timeout
        self._api_key = api_key

    @property
    def is_remote(self) -> bool:
        """Whether requests go over HTTP (else to the embedded engine)."""
        return self.url is not None and self.url.startswith(("http://", "https://"))

    def _store_url(self) -> str | os.PathLike[str]:
        if self.path is not None:
            return self.path
        assert self.url is not None
        if not self.url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise SapixError(
                "url must start with http://, https://, sqlite:///, postgresql:// or postgres://",
                None,
                "INVALID_ARGUMENT",
            )
        return self.url

    @staticmethod
    def _decode(request: Request, status: int, body: Any) -> Any:
        """The body of a 2xx answer; otherwise the SapixError its status and triple name."""
        if 200 <= status < 300:
            return body
        message = f"HTTP {status}"
        code = None
        if isinstance(body, dict):
            text = body.get("message") or body.get("error")
            message = text if isinstance(text, str) and text else message
            code = body.get("code") if isinstance(body.get("code"), str) else None
        if status == 404:
            ref = request.args.get("ref") or request.args.get("start")
            raise SapixNotFoundError(message, record_id=ref if isinstance(ref, str) else None)
        if status == 429:
            raise SapixRateLimitError(message)
        raise SapixError(message, status, code)


def _raise_mapped(exc: Exception) -> NoReturn:
    mapped = map_error(exc)
    if mapped is None:
        raise exc
    raise mapped from exc


# --- the sync client --------------------------------------------------------------------------


class SapixClient(_ClientBase):
    """The synchronous SapixDB client.

    ``SapixClient(url="http://localhost:7475", agent="my-app")`` talks HTTP;
    ``url="sqlite:///app.db"``, ``url="postgresql://…"`` or ``path="app.db"`` runs the engine
    in-process on ledgerstore. ``agent`` names the graph this client relates records in.
    One connection pool (or one store) per client; close it with :meth:`close` or ``with``.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        agent: str = "default",
        timeout: float = 30.0,
        *,
        path: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
    ) -> None:
        if transport is not None and url is None and path is None:
            url = "transport://"
        super().__init__(url, api_key, agent, timeout, path=path)
        if transport is not None:
            self._transport = transport
        elif self.is_remote:
            assert self.url is not None
            self._transport = HTTPTransport(self.url, api_key=api_key, timeout=timeout)
        else:
            try:
                self._transport = EmbeddedTransport(self._store_url())
            except Exception as exc:
                _raise_mapped(exc)
        self.graph = Graph(self)

    def _run(self, call: _Call[T]) -> T:
        try:
            response = self._transport.handle(call.request)
        except Exception as exc:
            _raise_mapped(exc)
        return call.parse(self._decode(call.request, response.status, response.body))

    def _stream(self, request: Request) -> Generator[StreamEvent, None, None]:
        try:
            response = self._transport.handle(request)
            if response.events is None:
                self._decode(request, response.status, response.body)
                return
            events = response.events
            try:
                for event in events:
                    yield StreamEvent.from_wire(event)
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
        except SapixError:
            raise
        except Exception as exc:
            _raise_mapped(exc)

    def ping(self) -> bool:
        """True if the server (or store) answers; never raises."""
        try:
            return self.health().get("status") == "ok"
        except SapixError:
            return False

    def health(self) -> dict[str, Any]:
        """The server's health document, ``{"status": "ok", "agent": …}``."""
        return self._run(_Calls.health())

    def collection(self, name: str) -> Collection:
        """A collection: in the current protocol, the strand of the agent ``name``."""
        return Collection(self, name)

    def ingest(self, collection: str, data: Any) -> WriteResult:
        """Write ``data`` to ``collection`` (the same as ``collection(c).write(data)``)."""
        return self.collection(collection).write(data)

    def subscribe_agent(
        self,
        agent_id: str,
        since: TimeRef | None = None,
        filter_field: str | None = None,
    ) -> Generator[StreamEvent, None, None]:
        """Events for every record ``agent_id`` writes; with ``since``, replay after it first."""
        return self._stream(_Calls.stream([agent_id], since, filter_field))

    def subscribe_global(
        self, agents: Sequence[str] | None = None, filter_field: str | None = None
    ) -> Generator[StreamEvent, None, None]:
        """Live events of every agent (or of ``agents``)."""
        return self._stream(_Calls.stream(agents, None, filter_field))

    def put_blob(self, data: bytes) -> dict[str, Any]:
        """Store bytes; returns ``{content_hash, size_bytes, …}``."""
        return self._run(_Calls.put_blob(data))

    def get_blob(self, content_hash: str) -> bytes:
        """The bytes stored under ``content_hash``."""
        return self._run(_Calls.get_blob(content_hash))

    def checkpoint(self) -> dict[str, Any]:
        """Ask the server to checkpoint every strand."""
        return self._run(_Calls.checkpoint())

    def close(self) -> None:
        """Close the connection pool (or the store)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Collection:
    """Records of one collection (an agent strand). Filters are AND of every key."""

    def __init__(self, client: SapixClient, name: str) -> None:
        self._client = client
        self.name = name

    def write(self, data: Any) -> WriteResult:
        """Append a record; returns its id, hash, parent hash and timestamp."""
        return self._client._run(_Calls.write(self.name, data))

    def write_batch(self, records: Sequence[Any]) -> list[WriteResult]:
        """Append several records in order; the results come back in the same order.

        Embedded: one transaction, all or nothing. Over HTTP: ``POST
        /v1/agents/{A}/records/batch``, one transaction per request of up to 10,000 records
        (and 8 MiB), so a batch that fits one request is all or nothing too; a larger one goes
        in several requests, in order, stopping at the first that fails. A record that is not
        JSON fails the call before anything is sent. A server without that endpoint (a real
        SapixDB answers 404 or 405) gets the records one by one, in order, stopping at the
        first failure (records before it stay written), which the client remembers.
        """
        if self._client._transport.supports_batch:
            return self._client._run(_Calls.write_batch(self.name, list(records)))
        return [self.write(record) for record in records]

    def get(self, record_id: str) -> Record:
        """One record by id or content hash; raises :class:`SapixNotFoundError`."""
        return self._client._run(_Calls.get(self.name, record_id))

    def latest(self, filter: Filter = None, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """The newest records (matching ``filter``), newest first."""
        return self._client._run(_Calls.latest(self.name, filter, limit))

    def history(self, filter: Filter = None, limit: int = HISTORY_LIMIT) -> list[Record]:
        """Every version written (matching ``filter``), oldest first."""
        return self._client._run(_Calls.history(self.name, filter, limit))

    def find(self, filter: Filter, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """Records matching every key of ``filter``, newest first."""
        return self._client._run(_Calls.find(self.name, filter, limit))

    def find_one(self, filter: Filter) -> Record | None:
        """The newest record matching ``filter``, or None."""
        try:
            return self._client._run(_Calls.find_one(self.name, filter))
        except SapixNotFoundError:
            return None

    def as_of(self, t: TimeRef) -> AsOfQuery:
        """The collection as it was at ``t`` (ISO string, datetime or HLC int)."""
        return AsOfQuery(self, _hlc(t))

    def current(self, key: str, filter: Filter = None, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """The newest record per distinct ``payload[key]``, deleted ones excluded."""
        return self._client._run(_Calls.current(self.name, key, filter, limit))

    def count_current(self, key: str, filter: Filter = None) -> int:
        """How many distinct ``payload[key]`` values have a live record."""
        return self._client._run(_Calls.count_current(self.name, key, filter))

    def strand(self, limit: int = 100, offset: int = 0) -> list[Record]:
        """Raw strand records, oldest first, from the 0-based ``offset``."""
        return self._client._run(_Calls.strand(self.name, limit, offset))

    def delete(self, ref: str) -> WriteResult:
        """Append a tombstone for a record (nothing is erased)."""
        return self._client._run(_Calls.delete(self.name, ref))

    def deleted(self) -> list[dict[str, Any]]:
        """The records currently deleted, with their tombstones."""
        return self._client._run(_Calls.deleted(self.name))

    def restore(self, ref: str) -> dict[str, Any]:
        """Re-append a deleted record's payload as a new record."""
        return self._client._run(_Calls.restore(self.name, ref))

    def verify(self) -> dict[str, Any]:
        """Recompute every hash of the strand; ``{"ok": …, "problem": …}``."""
        return self._client._run(_Calls.verify(self.name))


class AsOfQuery:
    """A collection bounded by a time: every method sees only records written by then."""

    def __init__(self, collection: Collection, hlc: int) -> None:
        self._collection = collection
        self.timestamp_hlc = hlc

    def _run(self, filter: Filter, limit: int, parse: Callable[[Any], T]) -> T:
        name = self._collection.name
        call = _Calls.as_of(name, self.timestamp_hlc, filter, limit, parse)
        return self._collection._client._run(call)

    def latest(self, filter: Filter = None, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """The newest records at that time, newest first."""
        return self._run(filter, limit, _reversed)

    def find(self, filter: Filter, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """Records matching ``filter`` at that time, newest first."""
        return self._run(filter, limit, _reversed)

    def find_one(self, filter: Filter) -> Record | None:
        """The newest matching record at that time, or None."""
        found = self._run(filter, 1, _reversed)
        return found[0] if found else None

    def all(self, limit: int = HISTORY_LIMIT) -> list[Record]:
        """Every record written by then (up to ``limit``), oldest first."""
        return self._run(None, limit, _records)


class Graph:
    """Typed, weighted edges between record ids, in the client's ``agent`` graph."""

    def __init__(self, client: SapixClient) -> None:
        self._client = client

    def add_edge(
        self, from_id: str, to_id: str, edge_type: str = "related", weight: float = 1.0
    ) -> GraphEdge:
        """Add a directed edge ``from_id -[edge_type]-> to_id``."""
        return self._client._run(
            _Calls.add_edge(self._client.agent, from_id, to_id, edge_type, weight)
        )

    def add_edges(self, edges: Sequence[EdgeSpec]) -> list[GraphEdge]:
        """Add many edges, each ``(from_id, to_id, edge_type)`` or ``(…, weight)``, in order.

        Embedded: one transaction, all or nothing (a bad edge fails the call with the error
        :meth:`add_edge` would raise, and nothing is written). Over HTTP: one request to
        ``POST /v1/{G}/graph/edges``, all or nothing too; a server without that endpoint
        (a real SapixDB) gets the edges one by one, in order, stopping at the first failure
        (edges before it stay written). At most 10,000 edges per call (400 beyond).
        """
        return self._client._run(_Calls.add_edges(self._client.agent, edges))

    def relate(
        self, from_id: str, to_id: str, edge_type: str = "related", weight: float = 1.0
    ) -> GraphEdge:
        """The seed's name for :meth:`add_edge`."""
        return self.add_edge(from_id, to_id, edge_type, weight)

    def remove_edge(self, from_id: str, to_id: str, edge_type: str = "related") -> bool:
        """Remove an edge; False if there was none."""
        return self._client._run(_Calls.remove_edge(self._client.agent, from_id, to_id, edge_type))

    def traverse(self, from_id: str, depth: int = 1, direction: str = "outbound") -> TraverseResult:
        """Records reachable within ``depth`` hops (``outbound``, ``inbound`` or ``both``)."""
        return self._client._run(_Calls.traverse(self._client.agent, from_id, depth, direction))

    def neighbors(self, node_id: str, direction: str = "outbound") -> list[Record]:
        """The records one hop away."""
        return self._client._run(_Calls.neighbors(self._client.agent, node_id, direction))

    def edges(self, node_id: str) -> list[GraphEdge]:
        """Every live outbound edge of ``node_id``."""
        return self._client._run(_Calls.edges(self._client.agent, node_id))


# --- the async client ---------------------------------------------------------------------------


class AsyncSapixClient(_ClientBase):
    """The asynchronous twin of :class:`SapixClient`: the same API, every method awaitable.

    Use it as ``async with AsyncSapixClient(...) as db:``; it closes its pool on exit. The
    embedded transport runs engine calls in worker threads.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        agent: str = "default",
        timeout: float = 30.0,
        *,
        path: str | os.PathLike[str] | None = None,
        transport: AsyncTransport | None = None,
    ) -> None:
        if transport is not None and url is None and path is None:
            url = "transport://"
        super().__init__(url, api_key, agent, timeout, path=path)
        if transport is not None:
            self._transport = transport
        elif self.is_remote:
            assert self.url is not None
            self._transport = AsyncHTTPTransport(self.url, api_key=api_key, timeout=timeout)
        else:
            try:
                self._transport = AsyncEmbeddedTransport(self._store_url())
            except Exception as exc:
                _raise_mapped(exc)
        self.graph = AsyncGraph(self)

    async def _run(self, call: _Call[T]) -> T:
        try:
            response = await self._transport.handle(call.request)
        except Exception as exc:
            _raise_mapped(exc)
        return call.parse(self._decode(call.request, response.status, response.body))

    async def _stream(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        try:
            response = await self._transport.handle(request)
            if response.events is None:
                self._decode(request, response.status, response.body)
                return
            events = response.events
            try:
                async for event in events:
                    yield StreamEvent.from_wire(event)
            finally:
                close = getattr(events, "aclose", None)
                if close is not None:
                    await close()
        except SapixError:
            raise
        except Exception as exc:
            _raise_mapped(exc)

    async def ping(self) -> bool:
        """True if the server (or store) answers; never raises."""
        try:
            return (await self.health()).get("status") == "ok"
        except SapixError:
            return False

    async def health(self) -> dict[str, Any]:
        """The server's health document."""
        return await self._run(_Calls.health())

    def collection(self, name: str) -> AsyncCollection:
        """A collection: the strand of the agent ``name``."""
        return AsyncCollection(self, name)

    async def ingest(self, collection: str, data: Any) -> WriteResult:
        """Write ``data`` to ``collection``."""
        return await self.collection(collection).write(data)

    def subscribe_agent(
        self,
        agent_id: str,
        since: TimeRef | None = None,
        filter_field: str | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """An async generator of ``agent_id``'s events (replaying after ``since`` first)."""
        return self._stream(_Calls.stream([agent_id], since, filter_field))

    def subscribe_global(
        self, agents: Sequence[str] | None = None, filter_field: str | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """An async generator of every agent's (or ``agents``') live events."""
        return self._stream(_Calls.stream(agents, None, filter_field))

    async def put_blob(self, data: bytes) -> dict[str, Any]:
        """Store bytes; returns ``{content_hash, size_bytes, …}``."""
        return await self._run(_Calls.put_blob(data))

    async def get_blob(self, content_hash: str) -> bytes:
        """The bytes stored under ``content_hash``."""
        return await self._run(_Calls.get_blob(content_hash))

    async def checkpoint(self) -> dict[str, Any]:
        """Ask the server to checkpoint every strand."""
        return await self._run(_Calls.checkpoint())

    async def aclose(self) -> None:
        """Close the connection pool (or the store)."""
        await self._transport.aclose()

    async def close(self) -> None:
        """The same as :meth:`aclose`."""
        await self.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncCollection:
    """The async twin of :class:`Collection`."""

    def __init__(self, client: AsyncSapixClient, name: str) -> None:
        self._client = client
        self.name = name

    async def write(self, data: Any) -> WriteResult:
        """Append a record."""
        return await self._client._run(_Calls.write(self.name, data))

    async def write_batch(self, records: Sequence[Any]) -> list[WriteResult]:
        """Append several records in order (see :meth:`Collection.write_batch`); a server
        without the batch endpoint gets them one by one, concurrently, no new one after a
        failure (so the strand's order may then differ from the list's)."""
        if self._client._transport.supports_batch:
            return await self._client._run(_Calls.write_batch(self.name, list(records)))
        results: list[WriteResult | None] = [None] * len(records)

        async def one(index: int, record: Any) -> None:
            results[index] = await self.write(record)

        async with anyio.create_task_group() as group:
            for index, record in enumerate(records):
                group.start_soon(one, index, record)
        return [r for r in results if r is not None]

    async def get(self, record_id: str) -> Record:
        """One record by id or content hash; raises :class:`SapixNotFoundError`."""
        return await self._client._run(_Calls.get(self.name, record_id))

    async def latest(self, filter: Filter = None, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """The newest records (matching ``filter``), newest first."""
        return await self._client._run(_Calls.latest(self.name, filter, limit))

    async def history(self, filter: Filter = None, limit: int = HISTORY_LIMIT) -> list[Record]:
        """Every version written (matching ``filter``), oldest first."""
        return await self._client._run(_Calls.history(self.name, filter, limit))

    async def find(self, filter: Filter, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """Records matching every key of ``filter``, newest first."""
        return await self._client._run(_Calls.find(self.name, filter, limit))

    async def find_one(self, filter: Filter) -> Record | None:
        """The newest record matching ``filter``, or None."""
        try:
            return await self._client._run(_Calls.find_one(self.name, filter))
        except SapixNotFoundError:
            return None

    def as_of(self, t: TimeRef) -> AsyncAsOfQuery:
        """The collection as it was at ``t`` (ISO string, datetime or HLC int)."""
        return AsyncAsOfQuery(self, _hlc(t))

    async def current(
        self, key: str, filter: Filter = None, limit: int = DEFAULT_LIMIT
    ) -> list[Record]:
        """The newest record per distinct ``payload[key]``, deleted ones excluded."""
        return await self._client._run(_Calls.current(self.name, key, filter, limit))

    async def count_current(self, key: str, filter: Filter = None) -> int:
        """How many distinct ``payload[key]`` values have a live record."""
        return await self._client._run(_Calls.count_current(self.name, key, filter))

    async def strand(self, limit: int = 100, offset: int = 0) -> list[Record]:
        """Raw strand records, oldest first."""
        return await self._client._run(_Calls.strand(self.name, limit, offset))

    async def delete(self, ref: str) -> WriteResult:
        """Append a tombstone for a record."""
        return await self._client._run(_Calls.delete(self.name, ref))

    async def deleted(self) -> list[dict[str, Any]]:
        """The records currently deleted."""
        return await self._client._run(_Calls.deleted(self.name))

    async def restore(self, ref: str) -> dict[str, Any]:
        """Re-append a deleted record's payload."""
        return await self._client._run(_Calls.restore(self.name, ref))

    async def verify(self) -> dict[str, Any]:
        """Recompute every hash of the strand."""
        return await self._client._run(_Calls.verify(self.name))


class AsyncAsOfQuery:
    """The async twin of :class:`AsOfQuery`."""

    def __init__(self, collection: AsyncCollection, hlc: int) -> None:
        self._collection = collection
        self.timestamp_hlc = hlc

    async def _run(self, filter: Filter, limit: int, parse: Callable[[Any], T]) -> T:
        name = self._collection.name
        call = _Calls.as_of(name, self.timestamp_hlc, filter, limit, parse)
        return await self._collection._client._run(call)

    async def latest(self, filter: Filter = None, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """The newest records at that time, newest first."""
        return await self._run(filter, limit, _reversed)

    async def find(self, filter: Filter, limit: int = DEFAULT_LIMIT) -> list[Record]:
        """Records matching ``filter`` at that time, newest first."""
        return await self._run(filter, limit, _reversed)

    async def find_one(self, filter: Filter) -> Record | None:
        """The newest matching record at that time, or None."""
        found = await self._run(filter, 1, _reversed)
        return found[0] if found else None

    async def all(self, limit: int = HISTORY_LIMIT) -> list[Record]:
        """Every record written by then, oldest first."""
        return await self._run(None, limit, _records)


class AsyncGraph:
    """The async twin of :class:`Graph`."""

    def __init__(self, client: AsyncSapixClient) -> None:
        self._client = client

    async def add_edge(
        self, from_id: str, to_id: str, edge_type: str = "related", weight: float = 1.0
    ) -> GraphEdge:
        """Add a directed edge."""
        call = _Calls.add_edge(self._client.agent, from_id, to_id, edge_type, weight)
        return await self._client._run(call)

    async def add_edges(self, edges: Sequence[EdgeSpec]) -> list[GraphEdge]:
        """Add many edges in order (see :meth:`Graph.add_edges`); a server without the batch
        endpoint gets them one by one, concurrently, no new one after a failure."""
        return await self._client._run(_Calls.add_edges(self._client.agent, edges))

    async def relate(
        self, from_id: str, to_id: str, edge_type: str = "related", weight: float = 1.0
    ) -> GraphEdge:
        """The seed's name for :meth:`add_edge`."""
        return await self.add_edge(from_id, to_id, edge_type, weight)

    async def remove_edge(self, from_id: str, to_id: str, edge_type: str = "related") -> bool:
        """Remove an edge; False if there was none."""
        call = _Calls.remove_edge(self._client.agent, from_id, to_id, edge_type)
        return await self._client._run(call)

    async def traverse(
        self, from_id: str, depth: int = 1, direction: str = "outbound"
    ) -> TraverseResult:
        """Records reachable within ``depth`` hops."""
        call = _Calls.traverse(self._client.agent, from_id, depth, direction)
        return await self._client._run(call)

    async def neighbors(self, node_id: str, direction: str = "outbound") -> list[Record]:
        """The records one hop away."""
        return await self._client._run(_Calls.neighbors(self._client.agent, node_id, direction))

    async def edges(self, node_id: str) -> list[GraphEdge]:
        """Every live outbound edge of ``node_id``."""
        return await self._client._run(_Calls.edges(self._client.agent, node_id))
