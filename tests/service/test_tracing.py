"""Tracing: a server span per request with the route template, the caller's trace continued,
and no personal data in any span."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from decisiontrail.apikeys import Scope
from decisiontrail.app import create_app
from decisiontrail.config import Settings
from decisiontrail.tracing import (
    TracingConfigurationError,
    configure_tracing,
    current_trace_ids,
    service_name,
    span_exporters,
    tracer,
)
from tests.service.inprocess import DECISION, Service

EMAIL = "alice@example.com"
PERSONAL = {**DECISION, "input": {"email": EMAIL}, "data_subjects": [EMAIL], "personal": ["input"]}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


async def test_a_request_is_one_server_span_named_for_its_route(
    service: Service, spans: InMemorySpanExporter
) -> None:
    writer = await service.key("acme", Scope.INGEST, Scope.READ)
    receipt = (await service.client.post("/v1/decisions", json=DECISION, headers=writer)).json()
    await service.client.get(f"/v1/decisions/{receipt['id']}", headers=writer)
    posted, got = server_spans(spans)  # FastAPI's own request spans are off: one per request
    assert posted.name == "POST /v1/decisions"
    assert posted.attributes is not None and got.attributes is not None
    assert posted.attributes["http.route"] == "/v1/decisions"
    assert posted.attributes["http.request.method"] == "POST"
    assert posted.attributes["http.response.status_code"] == 201
    assert posted.status.status_code is StatusCode.UNSET
    assert got.name == "GET /v1/decisions/{decision_id}"
    assert got.attributes["http.route"] == "/v1/decisions/{decision_id}"
    assert receipt["id"] not in str(got.attributes)  # the template, never the raw path
    assert "url.path" not in got.attributes


async def test_the_callers_traceparent_is_continued(
    service: Service, spans: InMemorySpanExporter
) -> None:
    writer = await service.key("acme", Scope.INGEST)
    headers = {**writer, "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    response = await service.client.post("/v1/decisions", json=DECISION, headers=headers)
    assert response.status_code == 201
    (span,) = server_spans(spans)
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_ID


async def test_without_a_traceparent_the_request_starts_a_trace(
    service: Service, spans: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("the test itself"):  # in process, not the caller's span
        await service.client.get("/healthz")
    (span,) = server_spans(spans)
    assert span.parent is None and span.name == "GET /healthz"


async def test_failures_are_recorded_without_the_exception_message(
    service: Service, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = await service.key("acme", Scope.READ)
    assert (await service.client.get("/nowhere")).status_code == 404

    async def broken(tenant: str, decision_id: str) -> Any:
        raise RuntimeError(f"lookup of {EMAIL} failed")

    monkeypatch.setattr(service.state.ledger.reads, "find", broken)
    with pytest.raises(RuntimeError):  # the transport re-raises what the app answered 500 for
        await service.client.get("/v1/decisions/some-id", headers=reader)
    missing, failed = server_spans(spans)
    assert missing.name == "GET" and missing.attributes is not None
    assert "http.route" not in missing.attributes
    assert missing.attributes["http.response.status_code"] == 404
    assert missing.status.status_code is StatusCode.UNSET  # a 4xx is the client's error
    assert failed.name == "GET /v1/decisions/{decision_id}" and failed.attributes is not None
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.attributes["error.type"] == "RuntimeError"
    assert failed.status.status_code is StatusCode.ERROR
    assert not failed.events  # no exception event: its message quotes the email
    assert EMAIL not in str(failed.to_json())


async def test_no_span_holds_personal_data(service: Service, spans: InMemorySpanExporter) -> None:
    key = await service.key("acme", Scope.INGEST, Scope.READ, Scope.READ_PERSONAL, Scope.ERASE)
    receipt = (await service.client.post("/v1/decisions", json=PERSONAL, headers=key)).json()
    shown = await service.client.get(f"/v1/decisions/{receipt['id']}?personal=true", headers=key)
    assert EMAIL in shown.text  # the value is there to leak
    erased = await service.client.delete(f"/v1/data-subjects/{EMAIL}", headers=key)
    assert erased.status_code == 200, erased.text
    invalid = await service.client.post(
        "/v1/decisions", json={**PERSONAL, "confidence": EMAIL}, headers=key
    )
    assert invalid.status_code == 422
    finished = spans.get_finished_spans()
    assert [s.name for s in server_spans(spans)] == [
        "POST /v1/decisions",
        "GET /v1/decisions/{decision_id}",
        "DELETE /v1/data-subjects/{subject_id}",
        "POST /v1/decisions",
    ]
    exported = "".join(span.to_json() for span in finished).lower()
    assert "alice" not in exported and "personal=true" not in exported


def test_create_app_sets_tracing_up_once_per_process(
    tmp_path: Path, span_exporter: InMemorySpanExporter
) -> None:
    provider, configured = trace.get_tracer_provider(), configure_tracing()
    create_app(Settings(data_dir=tmp_path))
    create_app(Settings(data_dir=tmp_path))
    assert configure_tracing() is configured
    assert trace.get_tracer_provider() is provider


@pytest.mark.parametrize(
    ("exporter", "installed"), [("", False), ("none", False), ("console", True)]
)
def test_an_sdk_is_installed_only_for_an_exporter(exporter: str, installed: bool) -> None:
    code = (
        "from opentelemetry import trace\n"
        "from decisiontrail.tracing import configure_tracing\n"
        "provider = configure_tracing()\n"
        "assert configure_tracing() is provider and trace.get_tracer_provider() is not None\n"
        "span = trace.get_tracer('t').start_span('s')\n"
        "print(span.is_recording(), provider and provider.resource.attributes['service.name'])\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ["OTEL_TRACES_EXPORTER"] = exporter
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, check=True, timeout=60, capture_output=True,
        text=True,
    )  # fmt: skip
    expected = "True decisiontrail" if installed else "False None"
    assert result.stdout.splitlines()[-1] == expected


def test_current_trace_ids_are_the_active_spans_in_hex(
    span_exporter: InMemorySpanExporter,
) -> None:
    assert current_trace_ids() is None
    with tracer.start_as_current_span("work") as span:
        context = span.get_span_context()
        ids = current_trace_ids()
    assert ids == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert ids is not None and len(ids[0]) == 32 and len(ids[1]) == 16


def test_the_exporter_follows_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert span_exporters({}) == []
    assert span_exporters({"OTEL_TRACES_EXPORTER": "none"}) == []
    (console,) = span_exporters({"OTEL_TRACES_EXPORTER": "console"})
    assert isinstance(console, ConsoleSpanExporter)
    with pytest.raises(TracingConfigurationError, match="zipkin"):
        span_exporters({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(TracingConfigurationError, match="grpc"):
        span_exporters({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    module = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, module, None)  # as if the otlp extra were not installed
        with pytest.raises(TracingConfigurationError, match=r"decisiontrail\[otlp\]"):
            span_exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})


def test_an_otlp_endpoint_alone_selects_the_otlp_exporter() -> None:
    otlp = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    (exporter,) = span_exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert isinstance(exporter, otlp.OTLPSpanExporter)
    exporter.shutdown()
    (both, console) = span_exporters({"OTEL_TRACES_EXPORTER": "otlp,console"})
    assert isinstance(both, otlp.OTLPSpanExporter) and isinstance(console, ConsoleSpanExporter)
    both.shutdown()


def test_the_service_name() -> None:
    assert service_name({}) == "decisiontrail"
    assert service_name({"OTEL_RESOURCE_ATTRIBUTES": "team=x,service.name=audit"}) == "audit"
    named = {"OTEL_SERVICE_NAME": "trail", "OTEL_RESOURCE_ATTRIBUTES": "service.name=audit"}
    assert service_name(named) == "trail"
