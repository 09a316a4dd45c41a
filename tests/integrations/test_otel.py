"""OpenTelemetry both ways: the span processor, and OTLP/HTTP into ``POST /v1/traces``, with the
real SDK, the real OTLP/HTTP exporter and OpenInference's LangChain instrumentation."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from decisiontrail_client import DecisionTrail
from decisiontrail_otel import DecisionTrailSpanProcessor
from tests.integrations.agents import weather_agent
from tests.integrations.conftest import Trail

AGENT_SPAN = {
    "gen_ai.operation.name": "invoke_agent",
    "gen_ai.agent.name": "planner",
    "gen_ai.conversation.id": "conv-9",
}
CHAT_SPAN = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.usage.input_tokens": 30,
    "gen_ai.usage.output_tokens": 12,
    "gen_ai.response.finish_reasons": ["tool_calls"],
    "gen_ai.conversation.id": "conv-9",
    "gen_ai.input.messages": json.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": "Book a table"}]}]
    ),
    "gen_ai.output.messages": json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": "c1", "name": "book", "arguments": {"n": 2}}],
            }
        ]
    ),
}
TOOL_SPAN = {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "book",
    "gen_ai.tool.call.id": "c1",
    "gen_ai.tool.call.arguments": '{"n": 2}',
    "gen_ai.tool.call.result": '{"ok": true}',
}
LEGACY_SPAN = {  # an older instrumentation: deprecated names, messages as events
    "gen_ai.system": "anthropic",
    "gen_ai.request.model": "claude-3",
    "gen_ai.usage.prompt_tokens": 5,
    "gen_ai.usage.completion_tokens": 3,
}
BROKEN_SPAN = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}


def emit_genai_spans(provider: TracerProvider) -> None:
    """An agent span with a chat call (current names), a tool call, an older instrumentation's
    call (deprecated names and message events), a failed call, and spans that are not GenAI."""
    tracer = provider.get_tracer("test.genai")
    with tracer.start_as_current_span("invoke_agent planner", attributes=AGENT_SPAN):
        with (
            tracer.start_as_current_span("chat gpt-4o", attributes=CHAT_SPAN),
            tracer.start_as_current_span("GET /internal", attributes={"http.method": "GET"}),
        ):
            pass
        with tracer.start_as_current_span("execute_tool book", attributes=TOOL_SPAN):
            pass
        with tracer.start_as_current_span("legacy completion", attributes=LEGACY_SPAN) as legacy:
            legacy.add_event("gen_ai.user.message", {"content": "hello"})
            legacy.add_event("gen_ai.choice", {"message": "hi there", "finish_reason": "stop"})
        with tracer.start_as_current_span("chat broken", attributes=BROKEN_SPAN) as broken:
            broken.record_exception(TimeoutError("upstream timed out"))
            broken.set_status(Status(StatusCode.ERROR, "upstream timed out"))
    with tracer.start_as_current_span("plain work"):
        pass


def check_genai_decisions(decisions: list[dict[str, Any]]) -> None:
    by_action = {d["action"]: d for d in decisions}
    assert set(by_action) == {"invoke_agent planner", "chat gpt-4o", "book",
                              "legacy completion", "chat broken"}  # fmt: skip
    root = by_action["invoke_agent planner"]
    assert root["kind"] == "chain" and "parent_run_id" not in root
    chat = by_action["chat gpt-4o"]
    assert chat["kind"] == "llm_call" and chat["parent_run_id"] == root["run_id"]
    assert chat["model"] == {
        "provider": "openai",
        "name": "gpt-4o",
        "version": "gpt-4o-2024-08-06",
        "parameters": {"temperature": 0.2},
    }
    assert chat["usage"] == {"input_tokens": 30, "output_tokens": 12}
    assert chat["session_id"] == "conv-9" and chat["trace_id"] == root["trace_id"]
    assert chat["input"]["messages"][0]["parts"][0]["content"] == "Book a table"
    assert chat["output"]["messages"][0]["parts"][0]["name"] == "book"
    assert chat["metadata"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    tool = by_action["book"]
    assert tool["kind"] == "tool_call" and tool["metadata"]["gen_ai.tool.call.id"] == "c1"
    assert tool["input"] == {"arguments": {"n": 2}} and tool["output"] == {"result": {"ok": True}}
    legacy = by_action["legacy completion"]
    assert legacy["model"]["provider"] == "anthropic"
    assert legacy["usage"] == {"input_tokens": 5, "output_tokens": 3}
    assert legacy["input"] == {"messages": [{"role": "user", "content": "hello"}]}
    assert legacy["output"]["messages"][0]["content"] == "hi there"
    broken = by_action["chat broken"]
    assert broken["metadata"]["status"] == "error"
    assert broken["metadata"]["error"]["type"] == "TimeoutError"


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    made = TracerProvider(resource=Resource.create({"service.name": "otel-service"}))
    yield made
    made.shutdown()


def test_span_processor_records_genai_spans(
    trail: Trail, tmp_path: Path, provider: TracerProvider
) -> None:
    client = DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool")
    provider.add_span_processor(DecisionTrailSpanProcessor(client=client, agent_name="otel-proc"))
    emit_genai_spans(provider)
    assert provider.force_flush()
    assert client.stats().complete
    check_genai_decisions([r["decision"] for r in trail.decisions("otel-proc")])


def test_otlp_exporter_sends_straight_to_the_service(
    trail: Trail, provider: TracerProvider
) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{trail.url}/v1/traces",
                                headers={"x-api-key": trail.key})  # fmt: skip
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    emit_genai_spans(provider)
    # the agent is the span's gen_ai.agent.name, else the resource's service.name
    (agent_span,) = [r["decision"] for r in trail.decisions("planner")]
    decisions = [r["decision"] for r in trail.decisions("otel-service")]
    check_genai_decisions([agent_span, *decisions])


def otlp_json(spans: list[dict[str, Any]], service: str = "json-agent") -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "handmade"}, "spans": spans}]}]}  # fmt: skip


def json_span(span_id: str, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, list):
            return {"arrayValue": {"values": [value(i) for i in v]}}
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": v}

    return {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": span_id,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
    }


def test_otlp_json_with_partial_success(trail: Trail) -> None:
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "small-1"}
    body = otlp_json([
        json_span("eee19b7ec3c1b174", "chat small", {**chat, "gen_ai.usage.input_tokens": 4}),
        json_span("eee19b7ec3c1b175", "chat bad",
                  {**chat, "decisiontrail.data_subjects": ["nowhere\u0000x"]}),
        json_span("eee19b7ec3c1b176", "GET /", {"http.route": "/"}),
    ])  # fmt: skip
    headers = {"Authorization": f"Bearer {trail.key}", "Content-Type": "application/json"}
    for _ in range(2):  # a retry of the same request records nothing twice
        answer = httpx.post(f"{trail.url}/v1/traces", content=json.dumps(body), headers=headers)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        partial = answer.json()["partialSuccess"]
        assert partial["rejectedSpans"] == "1"
        assert "eee19b7ec3c1b175" in partial["errorMessage"]
        assert "nowhere" not in partial["errorMessage"]  # never echoes a value
    (decision,) = [r["decision"] for r in trail.decisions("json-agent")]
    assert decision["model"]["name"] == "small-1" and decision["usage"] == {"input_tokens": 4}
    assert decision["span_id"] == "eee19b7ec3c1b174"
    assert decision["trace_id"] == "5b8efff798038103d269b633813fc60c"


def test_otlp_protobuf_gzip_and_errors(trail: Trail) -> None:

    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gz-1"}
    document = otlp_json([json_span("aaa19b7ec3c1b174", "chat gz", chat)], service="gz-agent")
    for span in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for name in ("traceId", "spanId"):
            span[name] = base64.b64encode(bytes.fromhex(span[name])).decode()
    request = json_format.ParseDict(document, ExportTraceServiceRequest())
    headers = {"x-api-key": trail.key, "Content-Type": "application/x-protobuf",
               "Content-Encoding": "gzip"}  # fmt: skip
    answer = httpx.post(f"{trail.url}/v1/traces", headers=headers,
                        content=gzip.compress(request.SerializeToString()))  # fmt: skip
    assert answer.status_code == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer.content)
    assert not response.HasField("partial_success")
    assert [r["decision"]["model"]["name"] for r in trail.decisions("gz-agent")] == ["gz-1"]
    url = f"{trail.url}/v1/traces"
    assert httpx.post(url, content=b"x").status_code == 401
    bad = {"x-api-key": trail.key}
    assert httpx.post(url, headers={**bad, "Content-Type": "text/plain"},
                      content=b"x").status_code == 415  # fmt: skip
    assert httpx.post(url, headers={**bad, "Content-Type": "application/x-protobuf"},
                      content=b"\xff\xff\xff").status_code == 400  # fmt: skip
    assert httpx.post(url, headers={**bad, "Content-Type": "application/json"},
                      content=b"[1, 2]").status_code == 400  # fmt: skip


def test_openinference_langchain_spans_arrive_as_decisions(trail: Trail, tmp_path: Path) -> None:
    """OpenInference's instrumentation on a real LangGraph run: through the OTLP exporter into
    the service, and through our span processor, the same decisions."""
    provider = TracerProvider(resource=Resource.create({"service.name": "oi-service"}))
    exporter = OTLPSpanExporter(endpoint=f"{trail.url}/v1/traces",
                                headers={"Authorization": f"Bearer {trail.key}"})  # fmt: skip
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool")
    provider.add_span_processor(DecisionTrailSpanProcessor(client=client, agent_name="oi-proc"))
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        weather_agent("oi").invoke({"messages": [("user", "weather in Riga")]},
                                   {"configurable": {"thread_id": "oi-thread"}})  # fmt: skip
    finally:
        instrumentor.uninstrument()
    assert provider.force_flush()
    provider.shutdown()
    for agent in ("oi-service", "oi-proc"):
        decisions = [r["decision"] for r in trail.decisions(agent)]
        llm_calls = [d for d in decisions if d["kind"] == "llm_call"]
        tools = [d for d in decisions if d["kind"] == "tool_call"]
        assert len(llm_calls) == 2, agent
        assert {d["model"]["name"] for d in llm_calls} == {"scripted-1"}
        assert llm_calls[0]["input"]["messages"][0]["content"] == "weather in Riga"
        (tool,) = tools
        assert tool["action"] == "get_weather"
        assert tool["output"] == {"result": "sunny in Riga"} or "sunny in Riga" in str(
            tool["output"]
        )
        runs = {d["run_id"] for d in decisions}
        assert all(d.get("parent_run_id") in runs for d in llm_calls + tools)
