"""A GenAI span as a decision: the one mapping the span processor and ``POST /v1/traces`` share.

Pure: a ``SpanView`` (what both an SDK ``ReadableSpan`` and an OTLP protobuf span can be read
into) in, the service's JSON envelope out, or None for a span that is not about GenAI (which
costs one pass over the attribute names). Reads the OpenTelemetry GenAI conventions (current
names and the deprecated ones older instrumentations still emit, message events included) and
OpenInference's (``openinference.span.kind``, ``llm.*``, ``input.value``, ``tool.*``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KINDS_BY_OPENINFERENCE = {
    "LLM": "llm_call", "TOOL": "tool_call", "RETRIEVER": "retrieval", "RERANKER": "retrieval",
    "CHAIN": "chain", "AGENT": "chain", "EMBEDDING": "custom", "GUARDRAIL": "custom",
    "EVALUATOR": "custom",
}  # fmt: skip
KINDS_BY_OPERATION = {
    "chat": "llm_call", "text_completion": "llm_call", "generate_content": "llm_call",
    "execute_tool": "tool_call", "invoke_agent": "chain", "create_agent": "chain",
    "embeddings": "custom", "retrieval": "retrieval",
}  # fmt: skip
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system", "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool",
}  # fmt: skip
REQUEST_PARAMETERS = (
    "temperature", "max_tokens", "top_p", "top_k", "frequency_penalty", "presence_penalty",
    "stop_sequences", "seed", "choice.count",
)  # fmt: skip
_INDEXED = re.compile(r"^(\d+)\.(.+)$")


@dataclass(frozen=True)
class SpanView:
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]
    events: Sequence[tuple[str, Mapping[str, Any]]] = ()
    status_error: bool = False
    status_message: str = ""
    resource: Mapping[str, Any] = field(default_factory=dict)
    scope: str = ""


def is_genai(attributes: Mapping[str, Any]) -> bool:
    """Whether a span is about GenAI at all (the cheap test every span goes through)."""
    if "openinference.span.kind" in attributes:
        return True
    return any(key.startswith("gen_ai.") for key in attributes)


def to_decision(span: SpanView, *, agent: str | None = None) -> dict[str, Any] | None:
    """The decision a GenAI span records, or None for any other span."""
    attrs = span.attributes
    if not is_genai(attrs):
        return None
    operation = _text(attrs.get("gen_ai.operation.name"))
    oi_kind = _text(attrs.get("openinference.span.kind"))
    kind = KINDS_BY_OPENINFERENCE.get((oi_kind or "").upper()) or KINDS_BY_OPERATION.get(
        operation or "", "llm_call" if _first(attrs, "gen_ai.request.model", "llm.model_name")
        else "custom",
    )  # fmt: skip
    tool_name = _text(_first(attrs, "gen_ai.tool.name", "tool.name"))
    agent_name = (
        agent or _text(attrs.get("gen_ai.agent.name")) or _text(span.resource.get("service.name"))
        or "otel"
    )  # fmt: skip
    record: dict[str, Any] = {
        "agent": agent_name[:200],
        "action": ((tool_name if kind == "tool_call" and tool_name else span.name) or kind)[:500],
        "kind": kind,
        "run_id": span.span_id,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "started_at": _time(span.start_ns),
        "ended_at": _time(max(span.end_ns, span.start_ns)),
    }
    if span.parent_span_id:
        record["parent_run_id"] = span.parent_span_id
    session = _text(_first(attrs, "gen_ai.conversation.id", "session.id"))
    if session:
        record["session_id"] = session[:200]
    metadata: dict[str, Any] = {"otel.span_name": span.name}
    if span.scope:
        metadata["otel.scope"] = span.scope
    for key in ("gen_ai.operation.name", "openinference.span.kind", "gen_ai.response.id",
                "gen_ai.agent.id", "gen_ai.agent.name", "user.id", "gen_ai.tool.call.id",
                "gen_ai.tool.type", "gen_ai.tool.description"):  # fmt: skip
        if key in attrs:
            metadata[key] = _plain(attrs[key])
    if "tool_call.id" in attrs and "gen_ai.tool.call.id" not in metadata:
        metadata["gen_ai.tool.call.id"] = _plain(attrs["tool_call.id"])
    if tool_name:
        metadata["gen_ai.tool.name"] = tool_name
    finish = _first(attrs, "gen_ai.response.finish_reasons")
    if finish is not None:
        metadata["gen_ai.response.finish_reasons"] = _plain(finish)
    model = _model(attrs)
    if model is not None:
        record["model"] = model
    usage = _usage(attrs)
    if usage:
        record["usage"] = usage
    inputs, outputs = _messages(span, kind)
    if inputs is not None:
        record["input"] = inputs
    if outputs is not None:
        record["output"] = outputs
    documents = _indexed(attrs, "retrieval.documents.")
    if documents:
        record["output"] = {"documents": [
            {"id": str(d["document.id"])} if "document.id" in d else {} for d in documents
        ]}  # fmt: skip
    tags = attrs.get("tag.tags")
    if isinstance(tags, list | tuple) and tags:
        record["tags"] = [str(tag)[:200] for tag in tags if str(tag)][:100]
    subjects = attrs.get("decisiontrail.data_subjects")
    if isinstance(subjects, list | tuple) and subjects:
        record["data_subjects"] = [str(s)[:200] for s in subjects][:100]
    personal = attrs.get("decisiontrail.personal")
    if isinstance(personal, list | tuple) and personal:
        record["personal"] = [str(p) for p in personal][:100]
    if span.status_error:
        metadata["status"] = "error"
        error: dict[str, Any] = {"message": span.status_message[:2000]}
        for name, event_attrs in span.events:
            if name == "exception":
                error["type"] = _text(event_attrs.get("exception.type")) or "exception"
                error["message"] = (_text(event_attrs.get("exception.message")) or "")[:2000]
        metadata["error"] = error
    record["metadata"] = metadata
    return record


def _model(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    name = _text(_first(attrs, "gen_ai.request.model", "llm.model_name", "gen_ai.response.model"))
    if not name:
        return None
    model: dict[str, Any] = {"name": name[:200]}
    provider = _text(_first(attrs, "gen_ai.provider.name", "gen_ai.system", "llm.provider",
                            "llm.system"))  # fmt: skip
    if provider:
        model["provider"] = provider[:200]
    version = _text(attrs.get("gen_ai.response.model"))
    if version:
        model["version"] = version[:200]
    parameters: dict[str, Any] = {}
    for name_ in REQUEST_PARAMETERS:
        if f"gen_ai.request.{name_}" in attrs:
            parameters[name_] = _plain(attrs[f"gen_ai.request.{name_}"])
    invocation = _json_or_text(attrs.get("llm.invocation_parameters"))
    if isinstance(invocation, dict):
        parameters.update({str(k): _plain(v) for k, v in invocation.items()})
    if parameters:
        model["parameters"] = parameters
    return model


def _usage(attrs: Mapping[str, Any]) -> dict[str, int]:
    usage: dict[str, int] = {}
    pairs = (
        ("input_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                          "llm.token_count.prompt")),
        ("output_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                           "llm.token_count.completion")),
    )  # fmt: skip
    for name, keys in pairs:
        value = _first(attrs, *keys)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            usage[name] = int(value)
    return usage


def _messages(span: SpanView, kind: str) -> tuple[Any, Any]:
    """(input, output) from, in order of preference: the current message attributes,
    OpenInference's flattened messages, message events, the deprecated prompt/completion,
    tool arguments/results, and ``input.value``/``output.value``."""
    attrs = span.attributes
    inputs: Any = None
    outputs: Any = None
    if "gen_ai.input.messages" in attrs:
        inputs = {"messages": _json_or_text(attrs["gen_ai.input.messages"])}
    elif oi_in := _indexed(attrs, "llm.input_messages."):
        inputs = {"messages": [_oi_message(m) for m in oi_in]}
    if "gen_ai.output.messages" in attrs:
        outputs = {"messages": _json_or_text(attrs["gen_ai.output.messages"])}
    elif oi_out := _indexed(attrs, "llm.output_messages."):
        outputs = {"messages": [_oi_message(m) for m in oi_out]}
    if inputs is None or outputs is None:
        said = [
            {"role": MESSAGE_EVENTS[name], "content": _json_or_text(e.get("content"))}
            for name, e in span.events if name in MESSAGE_EVENTS
        ]  # fmt: skip
        choices = [
            {"role": "assistant", "content": _json_or_text(e.get("message", e.get("content"))),
             **({"finish_reason": _plain(e["finish_reason"])} if "finish_reason" in e else {})}
            for name, e in span.events if name == "gen_ai.choice"
        ]  # fmt: skip
        if inputs is None and said:
            inputs = {"messages": said}
        if outputs is None and choices:
            outputs = {"messages": choices}
    if inputs is None and "gen_ai.prompt" in attrs:
        inputs = {"prompt": _json_or_text(attrs["gen_ai.prompt"])}
    if outputs is None and "gen_ai.completion" in attrs:
        outputs = {"completion": _json_or_text(attrs["gen_ai.completion"])}
    if kind == "tool_call":
        arguments = _first(attrs, "gen_ai.tool.call.arguments", "tool.parameters")
        if inputs is None and arguments is not None:
            inputs = {"arguments": _json_or_text(arguments)}
        if outputs is None and "gen_ai.tool.call.result" in attrs:
            outputs = {"result": _json_or_text(attrs["gen_ai.tool.call.result"])}
    if inputs is None and "input.value" in attrs:
        inputs = _json_or_text(attrs["input.value"])
        inputs = inputs if kind != "tool_call" else {"arguments": inputs}
    if outputs is None and "output.value" in attrs:
        outputs = _json_or_text(attrs["output.value"])
        outputs = outputs if kind != "tool_call" else {"result": outputs}
    return inputs, outputs


def _oi_message(flat: Mapping[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": _plain(flat.get("message.role")), "content": _plain(flat.get("message.content"))
    }  # fmt: skip
    calls = _indexed(flat, "message.tool_calls.")
    if calls:
        message["tool_calls"] = [
            {"id": _plain(c.get("tool_call.id")),
             "name": _plain(c.get("tool_call.function.name")),
             "arguments": _json_or_text(c.get("tool_call.function.arguments"))}
            for c in calls
        ]  # fmt: skip
    if "message.tool_call_id" in flat:
        message["tool_call_id"] = _plain(flat["message.tool_call_id"])
    return {key: value for key, value in message.items() if value is not None}


def _indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """OpenInference's flattened lists (``prefix.<i>.<rest>``) as a list of dicts."""
    items: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if key.startswith(prefix):
            match = _INDEXED.match(key[len(prefix) :])
            if match:
                items.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [items[index] for index in sorted(items)]


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in attrs:
            return attrs[key]
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):  # JSON has no NaN or Infinity
        return None
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _json_or_text(value: Any) -> Any:
    """Attributes hold structures as JSON strings; parse them where they are JSON."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return _plain(value)


def _time(nanoseconds: int) -> str:
    moment = datetime.fromtimestamp(nanoseconds / 1e9, UTC)
    return moment.isoformat().replace("+00:00", "Z")
