"""The compatible server: thin FastAPI routes over :class:`sapixdb.engine.SapixEngine`.

Routes parse the wire (path, query, JSON body), call one engine method in a worker thread and
return its dictionary. Every error — the engine's, a malformed body, an unknown route, a body
over the size limit — is answered with the ``{error, message, code}`` triple and a 4xx; a
5xx only means the store itself failed.

Every route speaks the real SapixDB wire except our additions, which official clients never
call: ``POST /v1/agents/{A}/verify``, ``POST /v1/agents/{A}/records/batch`` (many records in
one transaction) and ``POST /v1/{G}/graph/edges`` (many edges in one transaction). Our SDK
falls back to single writes and single edges when a server answers a batch endpoint 404 or 405.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import ledgerstore
from body_limit import BodyLimit
from sapixdb.engine import MAX_WRITE_BATCH, NAME_RULE, SapixEngine, too_many_records
from sapixdb.exceptions import SapixError
from sapixdb.server.auth import Authenticator

__all__ = ["ServerSettings", "create_app"]

DEFAULT_PORT = 7475
MIN_ROOT_KEY = 16
PLACEHOLDER_KEYS = frozenset({"changeme", "change-me", "secret", "password", "root", "admin"})
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Server configuration; :meth:`from_env` reads the ``SAPIX_*`` variables."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    storage_url: str = "sqlite:///sapixdb.db"
    root_key: str | None = None
    heartbeat_seconds: float = 15.0
    max_body_bytes: int = 8 * 1024 * 1024
    server_agent: str = "sapixdb"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be between 1 and 65535")
        if self.heartbeat_seconds <= 0 or self.max_body_bytes <= 0:
            raise ValueError("heartbeat_seconds and max_body_bytes must be positive")
        if self.root_key is not None and (
            len(self.root_key) < MIN_ROOT_KEY or self.root_key.lower() in PLACEHOLDER_KEYS
        ):
            # A guessable root key is worse than open mode: it looks protected.
            raise ValueError(
                f"the root key must be at least {MIN_ROOT_KEY} characters, not a placeholder"
            )

    @classmethod
    def from_env(cls, environ: MutableMapping[str, str] | None = None) -> ServerSettings:
        """Settings from ``SAPIX_HOST``, ``SAPIX_PORT``, ``SAPIX_STORAGE_URL``,
        ``SAPIX_ROOT_KEY``, ``SAPIX_HEARTBEAT_SECONDS`` and ``SAPIX_MAX_BODY_BYTES``."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            host=env.get("SAPIX_HOST", defaults.host),
            port=int(env.get("SAPIX_PORT", defaults.port)),
            storage_url=env.get("SAPIX_STORAGE_URL", defaults.storage_url),
            root_key=env.get("SAPIX_ROOT_KEY") or None,
            heartbeat_seconds=float(env.get("SAPIX_HEARTBEAT_SECONDS", defaults.heartbeat_seconds)),
            max_body_bytes=int(env.get("SAPIX_MAX_BODY_BYTES", defaults.max_body_bytes)),
        )


class FastJSONResponse(JSONResponse):
    """JSON bodies encoded with orjson."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(status: int, message: str, code: str) -> FastJSONResponse:
    return FastJSONResponse({"error": message, "message": message, "code": code}, status)


def _refusal(limit: int) -> Callable[[int], ASGIApp]:
    """How this server refuses a body (see :mod:`body_limit`): its error triple."""

    def reject(status: int) -> ASGIApp:
        if status == 413:
            return _error(413, f"request body larger than {limit} bytes", "PAYLOAD_TOO_LARGE")
        return _error(400, "invalid Content-Length", "BAD_REQUEST")

    return reject


async def _json(request: Request, *, required: bool = True) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise SapixError("a JSON body is required", 400, "INVALID_JSON")
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SapixError("the body is not valid JSON (UTF-8)", 400, "INVALID_JSON") from None


def _int_query(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SapixError(f"query parameter {name} must be an integer", 400, "BAD_REQUEST") from None


def _has_escaped_slash(request: Request) -> bool:
    """Whether the path as sent holds an escaped '/' (``%2F``) inside a segment."""
    raw = request.scope.get("raw_path") or b""
    return b"%2f" in bytes(raw).lower()


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SapixError(f"{what} must be a JSON object", 400, "BAD_REQUEST")
    return body


def create_app(settings: ServerSettings | None = None, *, engine: SapixEngine | None = None) -> Any:
    """The ASGI application: the FastAPI app wrapped in the body-size limit.

    With ``engine`` the app serves it (and does not close it); otherwise it opens
    ``settings.storage_url`` in its lifespan.
    """
    settings = settings or ServerSettings()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        served = engine or SapixEngine(
            ledgerstore.open_store(settings.storage_url), server_agent=settings.server_agent
        )
        state["engine"] = served
        state["auth"] = Authenticator(served, settings.root_key)
        # Stream readers block a worker thread for up to one poll interval each; give them
        # their own pool so many subscribers never starve ordinary requests.
        state["streams"] = anyio.CapacityLimiter(1000)
        try:
            yield
        finally:
            if own:
                served.close()

    def eng() -> SapixEngine:
        served: SapixEngine = state["engine"]
        return served

    async def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))

    async def authorize(request: Request) -> None:
        path = request.url.path
        if path == "/v1/health":
            return
        auth: Authenticator = state["auth"]
        if auth.open_mode:
            return
        headers = request.headers
        await run(
            auth.authorize, request.method, path, headers.get("authorization"),
            headers.get("x-sapix-caller"),
        )  # fmt: skip

    app = FastAPI(
        title="SapixDB-compatible server",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
        default_response_class=FastJSONResponse,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(SapixError)
    async def sapix_error(request: Request, exc: SapixError) -> Response:
        return _error(exc.status or 400, exc.message, exc.code or "ERROR")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and _has_escaped_slash(request):
            # A name with '/' arrives escaped (%2F) and, decoded, matches no route: say why.
            message = f"invalid name: {NAME_RULE} ('/' is not allowed)"
            return _error(400, message, "INVALID_NAME")
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
        return _error(exc.status_code, message, codes.get(exc.status_code, "HTTP_ERROR"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, "invalid request parameters", "BAD_REQUEST")

    @app.exception_handler(ledgerstore.InvalidArgumentError)
    async def store_argument(request: Request, exc: ledgerstore.InvalidArgumentError) -> Response:
        if isinstance(exc, ledgerstore.PayloadTooLargeError):
            return _error(413, "the value is larger than the store accepts", "PAYLOAD_TOO_LARGE")
        return _error(400, "the store rejected an argument", "BAD_REQUEST")

    @app.exception_handler(ledgerstore.LedgerStoreError)
    async def store_error(request: Request, exc: ledgerstore.LedgerStoreError) -> Response:
        return _error(503, "the store is unavailable; retry", "STORAGE_UNAVAILABLE")

    # --- current protocol: records ----------------------------------------------------------

    records = APIRouter(prefix="/v1/agents/{agent}", tags=["records"])

    @app.get("/v1/health")
    async def health() -> Any:
        return await run(eng().health)

    @records.post("/records/json")
    async def write(agent: str, request: Request) -> Any:
        body = _object(await _json(request), "the body")
        if "data" not in body:
            raise SapixError("the body needs data", 400, "BAD_REQUEST")
        return await run(eng().write, agent, body["data"])

    @records.post("/records/batch")
    async def write_batch(agent: str, request: Request) -> Any:
        # Our extension of the wire: a real SapixDB server has no batch write endpoint.
        body = _object(await _json(request), "the body")
        items = body.get("items")
        if not isinstance(items, list):
            raise SapixError("the body needs items: [<record data>, …]", 400, "BAD_REQUEST")
        if len(items) > MAX_WRITE_BATCH:
            raise too_many_records()
        collection = body.get("collection")
        written = await run(eng().write_batch, agent, items, collection=collection)
        return {"records": written}

    @records.get("/records/deleted")
    async def list_deleted(agent: str) -> Any:
        return await run(eng().list_deleted, agent)

    @records.get("/records/{ref}")
    async def get_record(agent: str, ref: str) -> Any:
        return await run(eng().get, agent, ref)

    @records.delete("/records/{ref}")
    async def delete_record(agent: str, ref: str) -> Any:
        return await run(eng().delete, agent, ref)

    @records.post("/records/{ref}/restore")
    async def restore_record(agent: str, ref: str) -> Any:
        return await run(eng().restore, agent, ref)

    @records.post("/query")
    async def query(agent: str, request: Request) -> Any:
        return await run(eng().query, agent, await _json(request))

    @records.get("/strand/records")
    async def strand(agent: str, request: Request) -> Any:
        limit = _int_query(request, "limit", None)
        offset = _int_query(request, "offset", 0)
        return await run(eng().strand, agent, limit=limit, offset=offset)

    @records.post("/verify")
    async def verify(agent: str) -> Any:
        return await run(eng().verify, agent)

    @records.get("/stream")
    async def agent_stream(agent: str, request: Request) -> Any:
        since = _int_query(request, "since", None)
        return await _stream(request, [agent], since)

    async def _stream(request: Request, agents: list[str] | None, since: int | None) -> Any:
        filter_field = request.query_params.get("filter") or None
        poll = min(0.5, settings.heartbeat_seconds)
        events = await run(eng().stream, agents, since=since, filter_field=filter_field, poll=poll)
        return EventSourceResponse(
            _frames(events, state["streams"], settings.heartbeat_seconds), ping=3600
        )

    @app.get("/v1/stream")
    async def global_stream(request: Request) -> Any:
        names = request.query_params.get("agents")
        agents = [a for a in names.split(",") if a] if names else None
        return await _stream(request, agents or None, None)

    # --- graph --------------------------------------------------------------------------------

    graph = APIRouter(prefix="/v1/{name}/graph", tags=["graph"])

    @graph.post("/edge")
    async def add_edge(name: str, request: Request) -> Any:
        body = _object(await _json(request), "an edge")
        return await run(
            eng().add_edge, name, body.get("src"), body.get("dst"),
            body.get("edge_type", "related"), body.get("weight", 1.0),
        )  # fmt: skip

    @graph.post("/edges")
    async def add_edges(name: str, request: Request) -> Any:
        # Our extension of the wire: a real SapixDB server has no batch edge endpoint.
        body = _object(await _json(request), "the body")
        if "edges" not in body:
            message = "the body needs edges: [{src, dst, edge_type, weight}, …]"
            raise SapixError(message, 400, "BAD_REQUEST")
        return await run(eng().add_edges, name, body["edges"])

    @graph.delete("/edge")
    async def remove_edge(name: str, request: Request) -> Any:
        body = _object(await _json(request), "an edge")
        return await run(
            eng().remove_edge, name, body.get("src"), body.get("dst"), body.get("edge_type")
        )

    @graph.get("/traverse/{start}")
    async def traverse(name: str, start: str, request: Request) -> Any:
        depth = _int_query(request, "depth", 1)
        direction = request.query_params.get("direction", "outbound")
        return await run(eng().traverse, name, start, depth=depth, direction=direction)

    @graph.post("/traverse")
    async def legacy_traverse(name: str, request: Request) -> Any:
        body = _object(await _json(request), "a traversal")
        return await run(
            eng().traverse, name, body.get("from"),
            depth=body.get("depth", 1), direction=body.get("direction", "outbound"),
        )  # fmt: skip

    @graph.get("/edges/{node}")
    async def edges(name: str, node: str) -> Any:
        return await run(eng().edges, name, node)

    # --- blobs, control ------------------------------------------------------------------------

    @app.put("/v1/blobs")
    async def put_blob(request: Request) -> Any:
        return await run(eng().put_blob, await request.body())

    @app.get("/v1/blobs/{ref}")
    async def get_blob(ref: str) -> Any:
        data = await run(eng().get_blob, ref)
        return Response(data, media_type="application/octet-stream")

    @app.post("/v1/control/checkpoint")
    async def checkpoint() -> Any:
        return await run(eng().checkpoint)

    # --- API keys ------------------------------------------------------------------------------

    keys = APIRouter(prefix="/v1/admin/api-keys", tags=["api-keys"])

    @keys.get("")
    async def list_keys() -> Any:
        return await run(eng().list_keys)

    @keys.post("")
    async def create_key(request: Request) -> Any:
        body = _object(await _json(request, required=False), "a key")
        allowed = {"label", "scopes", "expires_at_ms", "caller_id", "rate_limit_rps"}
        unknown = set(body) - allowed
        if unknown:
            raise SapixError(f"unknown key fields; allowed: {sorted(allowed)}", 400, "BAD_REQUEST")
        return FastJSONResponse(await run(lambda: eng().create_key(**body)), 201)

    @keys.get("/{key_id}")
    async def get_key(key_id: str) -> Any:
        return await run(eng().get_key, key_id)

    @keys.patch("/{key_id}")
    async def update_key(key_id: str, request: Request) -> Any:
        return await run(eng().update_key, key_id, await _json(request))

    @keys.delete("/{key_id}")
    async def delete_key(key_id: str) -> Any:
        return await run(eng().delete_key, key_id)

    @keys.get("/{key_id}/usage")
    async def key_usage(key_id: str) -> Any:
        auth: Authenticator = state["auth"]
        return await run(auth.usage, key_id)

    # --- legacy protocol -------------------------------------------------------------------------

    legacy = APIRouter(prefix="/v1/{agent}", tags=["legacy"])

    @legacy.post("/strand/write")
    async def legacy_write(agent: str, request: Request) -> Any:
        return await run(eng().legacy_write, agent, await _json(request))

    @legacy.post("/ingest")
    async def legacy_ingest(agent: str, request: Request) -> Any:
        return await run(eng().legacy_write, agent, await _json(request))

    @legacy.post("/strand/query")
    async def legacy_query(agent: str, request: Request) -> Any:
        return await run(eng().legacy_query, agent, await _json(request))

    @legacy.get("/strand/{record_id}")
    async def legacy_get(agent: str, record_id: str) -> Any:
        return await run(eng().legacy_get, agent, record_id)

    # Current routes first: they win where a legacy pattern could also match.
    for router in (records, graph, keys, legacy):
        app.include_router(router)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return _error(500, "internal error", "INTERNAL")

    limit = settings.max_body_bytes
    return BodyLimit(app, limit=limit, reject=_refusal(limit))


async def _frames(
    events: Any, limiter: anyio.CapacityLimiter, heartbeat: float
) -> AsyncIterator[dict[str, str]]:
    """SSE frames from an engine stream: one per record, a heartbeat when idle."""
    done = object()
    last = time.monotonic()
    try:
        while True:
            event = await anyio.to_thread.run_sync(next, events, done, limiter=limiter)
            if event is done:
                return
            if event is None:
                if time.monotonic() - last >= heartbeat:
                    last = time.monotonic()
                    yield {"event": "heartbeat", "data": "{}"}
                continue
            last = time.monotonic()
            yield {"event": "record.written", "data": orjson.dumps(event).decode()}
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(events.close, limiter=limiter)
