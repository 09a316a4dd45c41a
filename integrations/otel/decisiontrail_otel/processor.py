"""``DecisionTrailSpanProcessor``: GenAI spans from any instrumentation, as decisions.

``on_end`` reads the span's attributes into a ``SpanView`` and enqueues it; the mapping runs on
the sender's thread. Non-GenAI spans cost one pass over their attribute names.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode, format_span_id, format_trace_id

from decisiontrail_client import DecisionTrail, record_key
from decisiontrail_otel.mapping import SpanView, is_genai, to_decision


def span_view(span: ReadableSpan) -> SpanView:
    context = span.context
    parent = span.parent
    resource = span.resource.attributes if span.resource is not None else {}
    scope = span.instrumentation_scope.name if span.instrumentation_scope is not None else ""
    return SpanView(
        name=span.name,
        trace_id=format_trace_id(context.trace_id) if context else "0" * 32,
        span_id=format_span_id(context.span_id) if context else "0" * 16,
        parent_span_id=format_span_id(parent.span_id) if parent is not None else None,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        attributes=dict(span.attributes or {}),
        events=[(event.name, dict(event.attributes or {})) for event in span.events],
        status_error=span.status.status_code is StatusCode.ERROR,
        status_message=span.status.description or "",
        resource=dict(resource),
        scope=scope,
    )


class DecisionTrailSpanProcessor(SpanProcessor):
    """Add to a ``TracerProvider``: every ended GenAI span (OpenTelemetry GenAI conventions or
    OpenInference) becomes a decision, sent through the same sender and spool as the
    LangChain handler. Configured by arguments or ``DECISIONTRAIL_URL`` /
    ``DECISIONTRAIL_API_KEY`` / ``DECISIONTRAIL_AGENT``."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        agent_name: str | None = None,
        client: DecisionTrail | None = None,
        **client_options: Any,
    ) -> None:
        self.client = client or DecisionTrail(url, api_key, **client_options)
        self.agent_name = agent_name or os.environ.get("DECISIONTRAIL_AGENT") or None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes
        if not attributes or not is_genai(attributes):
            return
        view = span_view(span)
        agent = self.agent_name
        self.client.enqueue(
            record_key("otel", view.trace_id, view.span_id), lambda: to_decision(view, agent=agent)
        )

    def shutdown(self) -> None:
        self.client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.client.flush(timeout_millis / 1000).complete
