"""Request bodies to engine calls: the one mapping the server and the embedded transport share.

:func:`run` takes an operation name (see :data:`genesisdb.wire.ROUTES`) and its JSON body and
returns either one JSON value or, for streaming operations, an iterator of rows. ``observe`` is
not here: it returns an :class:`~genesisdb.engine.Observation` the caller drives (it needs
heartbeats and cancellation), via :func:`stream_arguments`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from genesisdb.engine import Engine
from genesisdb.exceptions import BadRequestError, NotFoundError
from genesisdb.gdbql import QueryBudget

__all__ = ["STREAM_OPTION_KEYS", "run", "stream_arguments"]

STREAM_OPTION_KEYS = (
    "lowerBound",
    "includeLowerBoundEvent",
    "upperBound",
    "includeUpperBoundEvent",
    "latestByEventType",
)


def _body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    return body


def stream_arguments(body: Any) -> tuple[Any, dict[str, Any]]:
    """``subject`` and the options of a stream/observe body (options may be at top level)."""
    request = _body(body)
    options = request.get("options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise BadRequestError("options must be a JSON object")
    merged = {key: request[key] for key in STREAM_OPTION_KEYS if key in request}
    merged.update(options)
    return request.get("subject"), merged


def run(
    engine: Engine, operation: str, body: Any = None, *, budget: QueryBudget | None = None
) -> Any | Iterator[Any]:
    """Run a non-observe operation: a JSON value, or an iterator for streaming ones
    (``budget`` bounds a query; see :meth:`Engine.query`)."""
    if operation == "backup" or operation == "restore":
        return _backup_or_restore(engine, operation, body)
    request = _body(body)
    match operation:
        case "commit":
            return {"events": engine.commit(request.get("events"), request.get("preconditions"))}
        case "stream":
            subject, options = stream_arguments(request)
            return engine.stream(subject, options)
        case "query":
            return engine.query(request.get("query"), budget=budget)
        case "erase":
            return {"erased": engine.erase(request.get("subject"))}
        case "ping":
            return "pong"
        case "audit":
            return engine.audit()
        case "status":
            return engine.status()
        case "subjects":
            return engine.subjects()
        case "types":
            return engine.types()
        case "register_schema":
            return engine.register_schema(request.get("type"), request.get("schema"))
        case "get_schema":
            return engine.get_schema(request.get("type"))
    raise NotFoundError(f"no operation named {operation!r}")


def _backup_or_restore(engine: Engine, operation: str, body: Any) -> Any:
    if operation == "backup":
        return list(engine.backup())
    events = body.get("events") if isinstance(body, dict) else body
    return {"restored": engine.restore(events)}
