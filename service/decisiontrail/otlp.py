"""OTLP/HTTP trace ingest: an ``ExportTraceServiceRequest`` (protobuf or JSON) in, its GenAI
spans recorded as decisions, an ``ExportTraceServiceResponse`` (with OTLP's partial success)
out. The span → decision mapping is ``decisiontrail_otel.mapping``, the one the client-side
span processor uses; decoding uses ``opentelemetry-proto``'s generated messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import ValidationError

from decisiontrail import decisions
from decisiontrail.errors import PayloadTooLarge, ServiceError
from decisiontrail.ledger import Ledger
from decisiontrail.metrics import Metrics
from decisiontrail.models import DecisionCreate
from decisiontrail_otel.mapping import SpanView, is_genai, to_decision

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class UnsupportedMediaType(ServiceError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


@dataclass(frozen=True)
class ExportResult:
    accepted: int  # GenAI spans recorded (or recorded before, under the same key)
    rejected: int  # GenAI spans that are not valid decisions
    ignored: int  # spans that are not about GenAI
    error_message: str = ""

    def response(self, media_type: str) -> bytes:
        answer = ExportTraceServiceResponse()
        if self.rejected:
            answer.partial_success.rejected_spans = self.rejected
            answer.partial_success.error_message = self.error_message
        if media_type == JSON:
            return str(json_format.MessageToJson(answer, indent=None)).encode()
        return bytes(answer.SerializeToString())


def media_type_of(content_type: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    raise UnsupportedMediaType(f"send {PROTOBUF} or {JSON} (OTLP/HTTP)")


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent before ``Content-Encoding: gzip``/``deflate``, never over ``limit``."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"content encoding {encoding!r} is not supported (use gzip)")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise ServiceError(f"the body is not valid {encoding}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed body is over {limit} bytes")
    return out


def decode(body: bytes, media_type: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if media_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError:
            raise ServiceError("the body is not an OTLP ExportTraceServiceRequest") from None
        return request
    try:
        document = json.loads(body)
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (ValueError, TypeError, json_format.ParseError, binascii.Error):
        raise ServiceError("the body is not an OTLP/JSON ExportTraceServiceRequest") from None
    return request


def _hex_ids_to_base64(document: Any) -> None:
    """OTLP/JSON spells trace and span ids in hex; protobuf's JSON mapping expects base64."""
    if not isinstance(document, dict):
        raise ValueError("not an object")
    for resource_spans in document.get("resourceSpans") or []:
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                items = [span, *(span.get("links") or [])]
                for item in items:
                    for name in ID_FIELDS:
                        if isinstance(item.get(name), str):
                            item[name] = base64.b64encode(bytes.fromhex(item[name])).decode()


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    if which is None:
        return None
    return getattr(value, which)


def _attributes(pairs: Any) -> dict[str, Any]:
    items: list[KeyValue] = list(pairs)
    return {pair.key: _value(pair.value) for pair in items}


def spans(request: ExportTraceServiceRequest) -> Iterator[SpanView | None]:
    """Each span as a ``SpanView``, or None for one that is not about GenAI (not read further)."""
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                attributes = _attributes(span.attributes)
                if not is_genai(attributes):
                    yield None
                    continue
                yield _view(span, attributes, resource, scope)


def _view(span: Span, attributes: dict[str, Any], resource: dict[str, Any], scope: str) -> SpanView:
    return SpanView(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        attributes=attributes,
        events=[(event.name, _attributes(event.attributes)) for event in span.events],
        status_error=span.status.code == Status.STATUS_CODE_ERROR,
        status_message=span.status.message,
        resource=resource,
        scope=scope,
    )


async def ingest_traces(
    *,
    ledger: Ledger,
    metrics: Metrics,
    tenant: str,
    request: ExportTraceServiceRequest,
    max_batch: int,
) -> ExportResult:
    """Record the request's GenAI spans as decisions. Each chunk of at most ``max_batch`` is
    recorded atomically under an idempotency key derived from its spans' ids, so an exporter
    retrying the same request records nothing twice."""
    valid: list[tuple[str, DecisionCreate]] = []
    rejected, ignored, first_problem = 0, 0, ""
    for view in spans(request):
        if view is None:
            ignored += 1
            continue
        body = to_decision(view)
        if body is None:  # pragma: no cover - spans() already filtered
            ignored += 1
            continue
        try:
            valid.append((f"{view.trace_id}/{view.span_id}", DecisionCreate.model_validate(body)))
        except ValidationError as exc:
            rejected += 1
            if not first_problem:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error.get("loc", ()))
                first_problem = f"span {view.span_id}: {where or 'decision'}: {error.get('msg')}"
    for start in range(0, len(valid), max_batch):
        chunk = valid[start : start + max_batch]
        digest = hashlib.sha256("\n".join(key for key, _ in chunk).encode()).hexdigest()
        await decisions.record_decisions(
            ledger=ledger, metrics=metrics, tenant=tenant,
            decisions=[decision for _, decision in chunk],
            idempotency_key=f"otlp-{digest}", endpoint="otlp",
        )  # fmt: skip
    message = ""
    if rejected:
        message = f"{rejected} GenAI spans are not valid decisions; the first: {first_problem}"
    return ExportResult(len(valid), rejected, ignored, message)
