"""DecisionTrail for OpenTelemetry: a span processor turning GenAI spans into decisions, and
the span → decision mapping the service's ``POST /v1/traces`` shares."""

from __future__ import annotations

from decisiontrail_otel.mapping import SpanView, is_genai, to_decision
from decisiontrail_otel.processor import DecisionTrailSpanProcessor

__all__ = ["DecisionTrailSpanProcessor", "SpanView", "is_genai", "to_decision"]
