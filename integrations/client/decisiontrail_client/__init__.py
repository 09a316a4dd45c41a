"""The light DecisionTrail client: typed ``DecisionTrail`` / ``AsyncDecisionTrail`` over the
service's HTTP API, a background sender and a durable local spool. Depends on httpx only."""

from __future__ import annotations

__version__ = "0.1.0"

from decisiontrail_client.client import (
    AsyncDecisionTrail,
    DecisionTrail,
    record_key,
)
from decisiontrail_client.redaction import Redaction
from decisiontrail_client.sender import FlushResult

__all__ = ["AsyncDecisionTrail", "DecisionTrail", "FlushResult", "Redaction", "record_key"]
