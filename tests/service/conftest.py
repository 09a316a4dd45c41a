"""Fixtures shared by the service's test modules."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from decisiontrail.tracing import configure_tracing
from tests.service.inprocess import Service, running


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    """The service in process on a fresh data directory."""
    async with running(tmp_path / "data") as started:
        yield started


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Every span the process ends from here on, kept in memory.

    Without an exporter in the environment the service installs no SDK (its spans are no-ops),
    so this installs one as an application embedding the service would; a tracer provider can
    be set once per process, hence one for the session.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        pytest.skip("tracing is disabled in this environment (OTEL_SDK_DISABLED)")
    provider = configure_tracing()
    if provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The spans a test ends."""
    span_exporter.clear()
    yield span_exporter
    span_exporter.clear()
