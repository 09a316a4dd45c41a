"""The decision service: keyword-only functions the routes (and the CLI) call. No HTTP here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from decisiontrail.canonical import CanonicalizationError, canonical_json
from decisiontrail.errors import NotFound, StoreUnavailable, Unprocessable
from decisiontrail.ledger import Ledger, LedgerError, PreparedDecision, Receipt
from decisiontrail.metrics import Metrics
from decisiontrail.models import DecisionCreate
from decisiontrail.records import restore_personal
from genesisdb import GenesisDBError


def prepare(decision: DecisionCreate) -> PreparedDecision:
    """The client's envelope as plain JSON (defaults left out), checked to be canonicalizable."""
    body = decision.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    body["agent"], body["action"] = decision.agent, decision.action
    body.pop("personal", None)
    try:
        canonical_json(body)
    except CanonicalizationError as exc:
        raise Unprocessable(str(exc)) from None
    return PreparedDecision(body, list(decision.personal))


async def record_decisions(
    *,
    ledger: Ledger,
    metrics: Metrics,
    tenant: str,
    decisions: Sequence[DecisionCreate],
    idempotency_key: str | None,
    endpoint: str,
) -> list[Receipt]:
    prepared = [prepare(decision) for decision in decisions]
    started = time.perf_counter()
    try:
        receipts = await ledger.record(tenant, prepared, idempotency_key=idempotency_key)
    except (GenesisDBError, LedgerError) as exc:
        metrics.store_errors.labels("genesisdb").inc()
        raise StoreUnavailable(f"the decision was not recorded ({type(exc).__name__})") from None
    finally:
        metrics.store_latency.labels("genesisdb", "commit").observe(time.perf_counter() - started)
    metrics.ingest_latency.labels(endpoint).observe(time.perf_counter() - started)
    for decision in decisions:
        metrics.decisions.labels(tenant, decision.kind.value).inc()
    return receipts


async def get_decision(
    *, ledger: Ledger, tenant: str, decision_id: str, with_personal: bool
) -> dict[str, Any]:
    receipt = await ledger.find(tenant, decision_id)
    if receipt is None:
        raise NotFound(f"no decision {decision_id}")
    record = dict(receipt.record)
    if with_personal:
        values = await ledger.personal_values(tenant, decision_id)
        if values is not None:
            record["decision"] = restore_personal(record["decision"], values)
        record["personal_erased"] = values is None
    return {"record": record, "log_index": receipt.log_index}
