"""Prometheus metrics: one registry per app, label values bounded (no personal data, no ids)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.decisions = Counter(
            "decisiontrail_decisions_ingested_total",
            "Decisions recorded, by tenant and kind.",
            ["tenant", "kind"],
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
            "Seconds since the newest signed checkpoint, by tenant.",
            ["tenant"],
            registry=r,
        )
