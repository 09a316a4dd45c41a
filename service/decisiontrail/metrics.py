"""Prometheus metrics: one registry per app, label values bounded (no personal data, no ids,
no tenant names: a tenant's existence must not show on a dashboard).

HTTP request metrics (rate, errors, latency by route template and status) come from
prometheus-fastapi-instrumentator (:func:`instrument_http`), whose handler label is the route
template, never the raw path, which can hold a data subject's id. ``_created`` series are off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as http_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series are noise

MAX_AGENT_LABELS = 200  # agents beyond this many share the label "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _agents: set[str] = field(default_factory=set)
    _checkpoints: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.decisions = Counter(
            "decisiontrail_decisions_ingested_total",
            "Decisions recorded, by agent and kind.",
            ["agent", "kind"],
            registry=r,
        )
        self.ingest_latency = Histogram(
            "decisiontrail_ingest_seconds",
            "Time to record a request's decisions, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.store_latency = Histogram(
            "decisiontrail_store_seconds",
            "Time spent in a store call, by store and operation.",
            ["store", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "decisiontrail_store_errors_total",
            "Failed store calls, by store.",
            ["store"],
            registry=r,
        )
        self.verifications = Counter(
            "decisiontrail_verifications_total",
            "Verification runs, by result.",
            ["result"],
            registry=r,
        )
        self.erasures = Counter(
            "decisiontrail_erasures_total", "Data-subject erasures.", registry=r
        )
        self.checkpoint_age = Gauge(
            "decisiontrail_checkpoint_age_seconds",
            "Seconds since the newest signed checkpoint of the tenant whose is oldest.",
            registry=r,
        )

    def agent_label(self, agent: str) -> str:
        """The agent's own label value, for the first agents seen; "other" after that."""
        if agent in self._agents:
            return agent
        if len(self._agents) < MAX_AGENT_LABELS:
            self._agents.add(agent)
            return agent
        return "other"

    def store_call(self, store: str, operation: str, seconds: float, ok: bool) -> None:
        self.store_latency.labels(store, operation).observe(seconds)
        if not ok:
            self.store_errors.labels(store).inc()

    def checkpoint_issued(self, tenant: str) -> None:
        self._checkpoints[tenant] = time.time()

    def refresh(self) -> None:
        """Bring time-based gauges up to date (called on every scrape)."""
        if self._checkpoints:
            self.checkpoint_age.set(time.time() - min(self._checkpoints.values()))


def instrument_http(app: FastAPI) -> CollectorRegistry:
    """Count and time every request by route template, method and status; the registry."""
    registry = CollectorRegistry()
    instrumentator = Instrumentator(
        should_group_status_codes=False,
        should_group_untemplated=True,  # an unknown path counts as handler "none"
        excluded_handlers=["/metrics"],
        registry=registry,
    )
    instrumentator.add(
        http_metrics.requests(metric_namespace="decisiontrail", registry=registry),
        http_metrics.latency(
            metric_namespace="decisiontrail",
            buckets=LATENCY_BUCKETS,
            registry=registry,
            should_exclude_streaming_duration=True,
        ),
    )
    instrumentator.instrument(app, metric_namespace="decisiontrail")
    return registry
