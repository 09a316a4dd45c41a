"""OpenTelemetry tracing: a tracer provider from the standard ``OTEL_*`` variables, and a
server span for every request.

The exporter is chosen by ``OTEL_TRACES_EXPORTER`` (a comma-separated list of ``otlp``,
``console``, ``none``; ``otlp`` when only an ``OTEL_EXPORTER_OTLP_*ENDPOINT`` is set, ``none``
otherwise). The OTLP exporter (HTTP/protobuf, the ``otlp`` extra) reads its endpoint, headers,
timeout and TLS settings from the environment itself, and the SDK honours
``OTEL_TRACES_SAMPLER``, ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SDK_DISABLED``. With no
exporter no SDK is installed: a recorded span costs ≈ 30 µs, a no-op one ≈ 7 µs, and a no-op
span still carries the trace id of a caller's ``traceparent`` into logs and decisions.

Server spans are private by construction: they hold the method, the route template, the status
and the scheme, never the raw path (``/v1/data-subjects/{subject_id}`` holds a person's id), the
query string, the client's address or its user agent. FastAPI's own request spans are turned
off in :func:`decisiontrail.app.create_app` for the same reason: they record the raw path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from decisiontrail import __version__

DEFAULT_SERVICE_NAME = "decisiontrail"
EXPORTERS = frozenset({"otlp", "console", "none"})
HTTP_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)

tracer = trace.get_tracer("decisiontrail", __version__)
"""The service's tracer; it follows whatever provider is installed, before or after."""

_lock = threading.Lock()
_configured = False
_provider: TracerProvider | None = None


class TracingConfigurationError(Exception):
    """The ``OTEL_*`` variables ask for something this installation cannot do."""


def span_exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (see the module docstring)."""
    names = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not names:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = "otlp" if endpoint else "none"
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = sorted(set(chosen) - EXPORTERS)
    if unknown:
        raise TracingConfigurationError(
            f"OTEL_TRACES_EXPORTER={names!r}: {', '.join(unknown)} is not supported; "
            "use otlp, console or none"
        )
    exporters: list[SpanExporter] = []
    for name in dict.fromkeys(chosen):
        if name == "otlp":
            exporters.append(_otlp_exporter(environ))
        elif name == "console":
            exporters.append(ConsoleSpanExporter(service_name=service_name(environ)))
    return exporters


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol != "http/protobuf":
        raise TracingConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use http/protobuf"
        )
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise TracingConfigurationError(
            "OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: "
            "pip install 'decisiontrail[otlp]' (or set OTEL_TRACES_EXPORTER=console or none)"
        ) from None
    return OTLPSpanExporter()  # endpoint, headers, TLS, timeout: from OTEL_EXPORTER_OTLP_*


def service_name(environ: Mapping[str, str]) -> str:
    """``OTEL_SERVICE_NAME``, else ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, else ours."""
    if environ.get("OTEL_SERVICE_NAME"):
        return environ["OTEL_SERVICE_NAME"]
    for pair in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, _, value = pair.partition("=")
        if key.strip() == "service.name" and value.strip():
            return value.strip()
    return DEFAULT_SERVICE_NAME


def configure_tracing(environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Install the SDK tracer provider if an exporter is configured; once per process.

    Later calls return what the first one did. Returns None where nothing would be exported
    (no exporter, or ``OTEL_SDK_DISABLED=true``): spans are then the API's no-ops, which cost
    next to nothing and still carry a caller's ``traceparent`` into logs. A provider the process
    installed itself is used as it is.
    """
    global _configured, _provider
    environ = os.environ if environ is None else environ
    with _lock:
        if _configured:
            return _provider
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):  # someone else set one up; use theirs
            _provider = current
        elif environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true" and isinstance(
            current, trace.ProxyTracerProvider
        ):
            exporters = span_exporters(environ)
            if exporters:
                resource = Resource.create(
                    {"service.name": service_name(environ), "service.version": __version__}
                )
                _provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER
                for exporter in exporters:
                    _provider.add_span_processor(BatchSpanProcessor(exporter))
                trace.set_tracer_provider(_provider)
        _configured = True
        return _provider


def current_trace_ids() -> tuple[str, str] | None:
    """The active span's (trace id, span id) as 32 and 16 lowercase hex digits, or None."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def route_template(scope: Scope) -> str | None:
    """The matched route's template (``/v1/decisions/{decision_id}``), never the raw path."""
    path_format = getattr(scope.get("route"), "path_format", None)
    if not isinstance(path_format, str):
        return None
    return str(scope.get("root_path", "")).rstrip("/") + path_format or "/"


def _trace_headers(scope: Scope) -> dict[str, str]:
    """The request's propagation headers (``traceparent``, ``tracestate``, ``baggage``)."""
    wanted = propagate.get_global_textmap().fields
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name in wanted:
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


class TracingMiddleware:
    """A SERVER span per HTTP request, continuing the caller's W3C ``traceparent``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "")).upper()
        if method not in HTTP_METHODS:
            method = "_OTHER"
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
        }
        if scope.get("http_version"):
            attributes["network.protocol.version"] = scope["http_version"]
        status: int | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        span_method = "HTTP" if method == "_OTHER" else method
        carrier = _trace_headers(scope)
        with tracer.start_as_current_span(
            span_method,
            context=propagate.extract(carrier) if carrier else Context(),  # a root otherwise
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,  # an exception's message may quote personal data
            set_status_on_exception=False,
        ) as span:
            error: BaseException | None = None
            try:
                await self.app(scope, receive, send_status)
            except BaseException as exc:
                error = exc
                raise
            finally:
                route = route_template(scope)
                if route is not None:
                    span.update_name(f"{span_method} {route}")
                    span.set_attribute("http.route", route)
                if status is None and isinstance(error, Exception):
                    status = 500  # what the outermost error handler answers
                if status is not None:
                    span.set_attribute("http.response.status_code", status)
                if error is not None or (status is not None and status >= 500):
                    span.set_attribute(
                        "error.type", type(error).__qualname__ if error else str(status)
                    )
                    span.set_status(StatusCode.ERROR)
