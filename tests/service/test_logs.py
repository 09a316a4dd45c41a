"""Structured logs: JSON lines tied to traces, an access line per request, no personal data."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from decisiontrail.apikeys import ApiKey, Scope
from decisiontrail.deps import StateDep, current_key
from decisiontrail.logs import bind_tenant, configure_logging
from decisiontrail.tracing import tracer
from tests.service.inprocess import DECISION, Service
from tests.service.server_process import make_server

EMAIL = "alice@example.com"
PERSONAL = {**DECISION, "input": {"email": EMAIL}, "data_subjects": [EMAIL], "personal": ["input"]}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Lines:
    """What the service logs, as its JSON handler writes it."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def text(self) -> str:
        return self.buffer.getvalue()

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.parsed() if line["logger"] == "decisiontrail.access"]


@pytest.fixture
def lines() -> Iterator[Lines]:
    root, captured = logging.getLogger(), Lines()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    handler = configure_logging("DEBUG", "json", stream=captured.buffer)
    assert handler is not None
    yield captured
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_every_line_is_json_and_requests_carry_their_trace_id(
    service: Service, lines: Lines, spans: InMemorySpanExporter
) -> None:
    writer = await service.key("acme", Scope.INGEST)
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    headers = {**writer, "traceparent": traceparent}
    assert (await service.client.post("/v1/decisions", json=DECISION, headers=headers)).is_success
    await service.client.get("/healthz")
    parsed = lines.parsed()  # raises if any line is not one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in parsed)
    posted, probe = lines.access()
    assert posted["method"] == "POST" and posted["route"] == "/v1/decisions"
    assert posted["status"] == 201 and posted["level"] == "INFO"
    assert isinstance(posted["duration_ms"], float) and posted["duration_ms"] > 0
    assert posted["trace_id"] == TRACE_ID  # the caller's trace, continued
    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert posted["span_id"] == format(server.context.span_id, "016x")  # the request's span
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", posted["time"])
    assert probe["route"] == "/healthz" and probe["level"] == "DEBUG"  # probes stay quiet


async def test_the_tenant_once_bound_is_on_the_access_line(service: Service, lines: Lines) -> None:
    async def key_and_tenant(request: Request, state: StateDep) -> ApiKey:
        key = await current_key(request, state)
        bind_tenant(key.tenant)  # what deps.current_key is to do once authenticated
        return key

    service.app.dependency_overrides[current_key] = key_and_tenant
    writer = await service.key("acme", Scope.INGEST)
    assert (await service.client.post("/v1/decisions", json=DECISION, headers=writer)).is_success
    await service.client.post("/v1/decisions", json=DECISION)  # no key: no tenant
    authenticated, anonymous = lines.access()
    assert authenticated["tenant"] == "acme" and authenticated["status"] == 201
    assert "tenant" not in anonymous and anonymous["status"] == 401


async def test_no_line_holds_personal_data(
    service: Service,
    lines: Lines,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    spans: InMemorySpanExporter,
) -> None:
    caplog.set_level(logging.DEBUG)
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

    async def broken(tenant: str, decision_id: str) -> Any:
        raise RuntimeError(f"lookup of {EMAIL} failed")

    monkeypatch.setattr(service.state.ledger.reads, "find", broken)
    with pytest.raises(RuntimeError):
        await service.client.get(f"/v1/decisions/{receipt['id']}", headers=key)

    routes = [(line["route"], line["status"]) for line in lines.access()]
    assert routes == [
        ("/v1/decisions", 201),
        ("/v1/decisions/{decision_id}", 200),
        ("/v1/data-subjects/{subject_id}", 200),
        ("/v1/decisions", 422),
        ("/v1/decisions/{decision_id}", 500),
    ]
    failed = lines.access()[-1]  # the escaping exception: its type and stack, in its trace
    assert failed["level"] == "ERROR" and failed["error_type"] == "RuntimeError"
    assert failed["exception"]["type"] == "RuntimeError"
    assert any("in broken" in frame for frame in failed["exception"]["stack"])
    assert re.fullmatch("[0-9a-f]{32}", failed["trace_id"])
    assert "alice" not in lines.text().lower()
    assert "personal=true" not in lines.text()
    assert not [r for r in caplog.records if "alice" in r.getMessage().lower()]


def test_extras_are_whitelisted_and_exceptions_lose_their_message(
    lines: Lines, spans: InMemorySpanExporter
) -> None:
    log = logging.getLogger("decisiontrail.test")
    log.info("erased", extra={"decision_id": "d-1", "count": 2, "subject": EMAIL, "path": "/x"})
    try:
        raise ValueError(f"not an id: {EMAIL}")
    except ValueError:
        with tracer.start_as_current_span("work"):
            log.exception("refused")
    erased, refused = lines.parsed()
    assert erased["decision_id"] == "d-1" and erased["count"] == 2
    assert "subject" not in erased and "path" not in erased and "trace_id" not in erased
    assert refused["level"] == "ERROR" and refused["exception"]["type"] == "ValueError"
    assert re.fullmatch("[0-9a-f]{32}", refused["trace_id"])
    assert "alice" not in lines.text().lower()


def test_the_text_format_holds_the_same_fields() -> None:
    buffer = io.StringIO()
    handler = configure_logging("INFO", "text", stream=buffer)
    assert handler is not None
    try:
        logging.getLogger("decisiontrail.test").warning("slow", extra={"duration_ms": 12.5})
    finally:
        logging.getLogger().removeHandler(handler)
    assert re.fullmatch(
        r"\S+Z WARNING decisiontrail\.test slow duration_ms=12\.5\n", buffer.getvalue()
    )


def test_logging_is_left_alone_where_the_process_has_set_it_up() -> None:
    root = logging.getLogger()
    root.addHandler(existing := logging.NullHandler())
    try:
        assert configure_logging("DEBUG", force=False) is None
    finally:
        root.removeHandler(existing)


def test_serve_writes_json_lines_and_only_its_own_access_log(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    server.start()
    try:
        assert httpx.post(f"{server.url}/v1/decisions?q={EMAIL}", json=PERSONAL).status_code == 401
    finally:
        server.stop()
    output = (tmp_path / f"server-{server.port}.log").read_text()
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in logged if line["logger"] == "decisiontrail.access"]
    assert [(line["route"], line["status"]) for line in access] == [("/v1/decisions", 401)]
    assert "HTTP/1.1" not in output  # uvicorn's access log is off
    assert "alice" not in output.lower()
