"""The compatible server: thin FastAPI routes over the engine (``create_app(settings)``).

Each route authorizes, reads the JSON body, runs the engine in a worker thread and writes the
answer: JSON, or NDJSON for streams (every line ends in ``\\n``; no rows → an empty body).
Every success is HTTP 200; errors are ``{"error", "code", "details"}`` with the status of
their :mod:`genesisdb.exceptions` class. Request bodies and event data never reach the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from itertools import islice
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from body_limit import BodyLimit
from genesisdb import operations
from genesisdb.engine import ENGINE_VERSION, Engine, Observation
from genesisdb.exceptions import (
    BadRequestError,
    EventTooLargeError,
    GenesisDBError,
    NotFoundError,
    ServerError,
)
from genesisdb.server.auth import TokenAuthority
from genesisdb.server.queries import QueryGate, RowPuller, token_key
from genesisdb.server.settings import ServerSettings
from genesisdb.wire import API_PREFIX, HEARTBEAT, ROUTES, Route, ndjson_line

__all__ = ["create_app"]

log = logging.getLogger("genesisdb.server")

NDJSON = "application/x-ndjson"
_CHUNK = 256
# How long one wait for a live event holds a worker thread; heartbeats are counted across
# waits, and a closed observation frees its thread within this time.
_OBSERVE_POLL_SECONDS = 0.5

Handler = Callable[[Request], Awaitable[Response]]


class _Metrics:
    """Prometheus metrics of one app (own registry, so several apps can coexist in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "genesisdb_http_requests",
            "HTTP requests by operation and status",
            ["operation", "status"],
            registry=self.registry,
        )
        self.committed = Counter(
            "genesisdb_events_committed", "Events committed", registry=self.registry
        )
        self.observers = Gauge(
            "genesisdb_observers", "Observations currently open", registry=self.registry
        )
        self.seconds = Counter(
            "genesisdb_request_seconds",
            "Time spent answering requests (until the first byte for streams)",
            ["operation"],
            registry=self.registry,
        )


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _error(exc: GenesisDBError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    response = _json(exc.to_body(), exc.status)
    if headers:
        response.headers.update(headers)
    return response


async def _body(request: Request) -> Any:
    """The parsed JSON body (None when empty); 400 when not JSON. (The body's size limit is
    :class:`body_limit.BodyLimit`'s, before any route.)"""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequestError("the request body is not valid JSON") from None


def _refusal(limit: int) -> Callable[[int], Response]:
    """How this server refuses a body (see :mod:`body_limit`): its error body."""

    def reject(status: int) -> Response:
        if status == 413:
            return _error(EventTooLargeError(f"the request body exceeds {limit} bytes"))
        return _error(BadRequestError("invalid Content-Length"))

    return reject


def _take(rows: Iterator[Any]) -> list[Any]:
    return list(islice(rows, _CHUNK))


async def _ndjson(first: list[Any], rows: Iterator[Any]) -> AsyncIterator[bytes]:
    """NDJSON lines, a chunk of rows per write; the first chunk was fetched already."""
    chunk = first
    try:
        while chunk:
            yield b"".join(ndjson_line(row) for row in chunk)
            if len(chunk) < _CHUNK:
                return
            chunk = await anyio.to_thread.run_sync(_take, rows)
    except GenesisDBError as exc:
        # The status line is gone; end the body early and say why in the log only.
        log.warning("stream ended early: %s", exc.code)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


async def _json_array(first: list[Any], rows: Iterator[Any]) -> AsyncIterator[bytes]:
    yield b"["
    separator = b""
    async for line in _ndjson(first, rows):
        for part in line.splitlines():
            yield separator + part
            separator = b","
    yield b"]"


def create_app(settings: ServerSettings, *, engine: Engine | None = None) -> FastAPI:
    """The ASGI app; opens the store from ``settings`` unless ``engine`` is given."""
    settings.validated()
    authority = TokenAuthority(settings)
    metrics = _Metrics()
    # An engine handed in serves at once (in-process tests drive the app without a lifespan).
    state: dict[str, Engine] = {} if engine is None else {"engine": engine}
    observers = anyio.CapacityLimiter(settings.max_observers)
    gate = QueryGate(settings.max_queries, settings.max_queries_per_token)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        if engine is None:
            state["engine"] = await anyio.to_thread.run_sync(
                lambda: Engine.open(
                    settings.storage_url,
                    max_event_bytes=settings.max_event_bytes,
                    query_seconds=settings.query_seconds,
                )
            )
        else:
            state["engine"] = engine
        try:
            yield
        finally:
            if owned:
                state["engine"].close()

    app = FastAPI(
        title="Genesis DB (compatible server)",
        version=ENGINE_VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def current_engine() -> Engine:
        found = state.get("engine")
        if found is None:
            raise ServerError("the server is not started")
        return found

    def endpoint(name: str, route: Route) -> Handler:
        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            status = 200
            try:
                authority.require(request.headers.get("authorization"), route.role)
                if route.method == "GET":
                    body: Any = dict(request.query_params)
                else:
                    body = await _body(request)
                if name == "query":
                    response = await query(request, body)
                else:
                    response = await answer(name, route, body)
                status = response.status_code
                return response
            except GenesisDBError as exc:
                status = exc.status
                return _error(exc)
            except Exception:
                status = 500  # answered by the app's last-resort handler
                raise
            finally:
                metrics.requests.labels(name, str(status)).inc()
                metrics.seconds.labels(name).inc(time.perf_counter() - started)

        handle.__name__ = f"genesisdb_{name}"
        return handle

    async def answer(name: str, route: Route, body: Any) -> Response:
        if name == "ping":
            return Response("pong", media_type="text/plain")
        if name == "metrics":
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
        if name == "observe":
            return await observe(body)
        engine_now = current_engine()
        if name == "backup":
            rows = await anyio.to_thread.run_sync(engine_now.backup)
            first = await anyio.to_thread.run_sync(_take, rows)
            return StreamingResponse(_json_array(first, rows), media_type="application/json")
        result = await anyio.to_thread.run_sync(operations.run, engine_now, name, body)
        if route.streaming:
            first = await anyio.to_thread.run_sync(_take, result)
            return StreamingResponse(_ndjson(first, result), media_type=NDJSON)
        if name == "commit" and isinstance(result, dict):
            metrics.committed.inc(len(result["events"]))
        return _json(result)

    async def query(request: Request, body: Any) -> Response:
        """GDBQL: admitted by the gate, bounded by a budget, cancelled on disconnect."""
        engine_now = current_engine()
        release = gate.enter(token_key(request.headers.get("authorization")))
        try:
            budget = engine_now.budget()
            rows = await anyio.to_thread.run_sync(
                lambda: operations.run(engine_now, "query", body, budget=budget),
                limiter=gate.threads,
            )
            puller = RowPuller(rows, budget, gate)
            try:
                first = await puller.first(request)
            except BaseException:
                await puller.close()
                raise
        except BaseException:
            release()
            raise
        return StreamingResponse(
            puller.lines(first, ndjson_line, release),
            media_type=NDJSON,
            background=BackgroundTask(release),  # also when the body never starts
        )

    async def observe(body: Any) -> Response:
        engine_now = current_engine()
        subject, options = operations.stream_arguments(body)
        observation = await anyio.to_thread.run_sync(engine_now.observe, subject, options)
        return StreamingResponse(follow(observation), media_type=NDJSON)

    async def follow(observation: Observation) -> AsyncIterator[bytes]:
        metrics.observers.inc()
        quiet_since = time.monotonic()
        try:
            while True:
                event = await anyio.to_thread.run_sync(
                    observation.next, _OBSERVE_POLL_SECONDS, limiter=observers
                )
                if event is not None:
                    quiet_since = time.monotonic()
                    yield ndjson_line(event)
                elif observation.finished:
                    return
                elif time.monotonic() - quiet_since >= settings.heartbeat_seconds:
                    quiet_since = time.monotonic()
                    yield ndjson_line(HEARTBEAT)
        except GenesisDBError as exc:
            log.warning("observation ended early: %s", exc.code)
        finally:
            metrics.observers.dec()
            observation.close()

    limit = settings.max_body_bytes
    app.add_middleware(BodyLimit, limit=limit, reject=_refusal(limit))
    for name, route in ROUTES.items():
        app.add_api_route(
            API_PREFIX + route.path,
            endpoint(name, route),
            methods=[route.method],
            include_in_schema=False,
        )
    app.add_api_route(API_PREFIX + "/query", endpoint("query", ROUTES["query"]), methods=["POST"])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error(NotFoundError("no such route"))
        if exc.status_code == 405:
            return _json(
                {"error": "method not allowed", "code": "METHOD_NOT_ALLOWED", "details": {}}, 405
            )
        return _json(
            {"error": str(exc.detail), "code": "HTTP_ERROR", "details": {}}, exc.status_code
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Only the exception type: its message could quote event data.
        log.error("unexpected %s on %s", type(exc).__name__, request.url.path)
        return _error(ServerError("internal server error"))

    return app
