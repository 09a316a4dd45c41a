"""Structured logs: one JSON object a line, tied to traces, without personal data.

What a log line may hold is decided here, not at each call site: the time, level, logger and
message, the active trace and span ids, and only the ``extra`` fields named in
:data:`LOGGED_FIELDS` (ids, counts, tenant, route, status, durations). Any other ``extra`` is
dropped, and an exception is logged as its type and stack (file, line, function), never its
message: a message can quote the value that caused it. Call sites log ids, never values.

The access log (:class:`AccessLogMiddleware`) writes one line per request with the method, the
route template, the status, the duration and the tenant once known — never the raw path (it can
hold a data subject's id), the query string, a header or a body.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Literal

import orjson
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from decisiontrail.tracing import current_trace_ids, route_template

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["json", "text"]

LOGGED_FIELDS = (
    "tenant", "method", "route", "status", "duration_ms", "code", "error_type",
    "decision_id", "key_id", "agent", "kind", "endpoint", "count", "log_index", "tree_size",
    "erased_values",
)  # fmt: skip
"""The ``extra`` fields a line may carry; add one only if it can never hold personal data."""

QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: their access lines are DEBUG unless they fail."""

NOISY_LOGGERS = ("httpx", "httpcore")
"""Third-party loggers that log whole URLs at INFO; held at WARNING."""

access_log = logging.getLogger("decisiontrail.access")


@dataclass
class _Request:
    tenant: str | None = None


_request: ContextVar[_Request | None] = ContextVar("decisiontrail_request", default=None)


def bind_tenant(tenant: str) -> None:
    """Record the current request's tenant on its log lines and its span (call once it is
    authenticated); outside a request this only tags the current span."""
    request = _request.get()
    if request is not None:
        request.tenant = tenant
    trace.get_current_span().set_attribute("decisiontrail.tenant", tenant)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The whitelisted extras of a record, the request's tenant and the active trace ids."""
    fields = {name: getattr(record, name) for name in LOGGED_FIELDS if hasattr(record, name)}
    request = _request.get()
    if "tenant" not in fields and request is not None and request.tenant is not None:
        fields["tenant"] = request.tenant
    ids = current_trace_ids()
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


def _exception(record: logging.LogRecord) -> dict[str, Any] | None:
    if not record.exc_info or record.exc_info[0] is None:
        return None
    kind, _, tb = record.exc_info
    frames = traceback.extract_tb(tb)
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins."),
        "stack": [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames],
    }


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, trace ids, whitelisted extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        exception = _exception(record)
        if exception is not None:
            line["exception"] = exception
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The same content for a terminal: ``time LEVEL logger message key=value …``."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        line = f"{_time(record)} {record.levelname} {record.name} {record.getMessage()}"
        line = f"{line} {pairs}" if pairs else line
        exception = _exception(record)
        if exception is not None:
            line += f"\n  {exception['type']}\n    " + "\n    ".join(exception["stack"])
        return line


class _Handler(logging.StreamHandler[IO[str]]):
    """The handler :func:`configure_logging` installs (so a second call replaces it)."""


def configure_logging(
    level: LogLevel = "INFO",
    log_format: LogFormat = "json",
    *,
    stream: IO[str] | None = None,
    force: bool = True,
) -> logging.Handler | None:
    """Send every log record to ``stream`` (standard error) as JSON lines or text.

    Replaces a handler an earlier call installed. With ``force=False`` it does nothing where the
    root logger already has handlers (the application's own logging, or a test runner's).
    Returns the installed handler, or None.
    """
    root = logging.getLogger()
    if not force and root.handlers:
        return None
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler


class AccessLogMiddleware:
    """One ``decisiontrail.access`` line per HTTP request, written when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        request = _Request()
        token = _request.set(request)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if status is None and isinstance(error, Exception):
                status = 500  # what the outermost error handler answers
            route = route_template(scope)
            if (status is not None and status >= 500) or isinstance(error, Exception):
                level = logging.ERROR
            elif route in QUIET_ROUTES:
                level = logging.DEBUG
            else:
                level = logging.INFO
            method = str(scope.get("method", ""))
            fields: dict[str, Any] = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            if error is not None:
                fields["error_type"] = type(error).__qualname__
            # An escaping exception is logged here, inside the request's span, with its stack:
            # the error handler that answers 500 runs outside every middleware of ours.
            failure = error if isinstance(error, Exception) else None
            access_log.log(
                level, "%s %s %s", method, route or "-", status or "-", extra=fields,
                exc_info=failure,
            )  # fmt: skip
            _request.reset(token)
