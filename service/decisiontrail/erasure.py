"""GDPR art. 17 erasure: every personal value about a data subject, gone from the stores,
with a signed receipt, the erasure itself recorded as a decision, and legal holds respected."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from decisiontrail.canonical import canonical_json
from decisiontrail.errors import NotFound
from decisiontrail.ledger import Ledger, PreparedDecision
from decisiontrail.ledger.events import HOLD_PLACED_TYPE, HOLD_RELEASED_TYPE, subject_path
from decisiontrail.metrics import Metrics
from decisiontrail.records import format_time
from decisiontrail.signing import RECEIPT_DOMAIN, Keyring

ERASURE_AGENT = "decisiontrail"
ERASURE_ACTION = "gdpr.erasure"


async def erase_subject(
    *, ledger: Ledger, keyring: Keyring, metrics: Metrics, tenant: str, subject_id: str
) -> dict[str, Any]:
    """Erase a subject's personal data in the tenant; returns the signed receipt."""
    decision_ids, erased = await ledger.subjects.erase_subject(tenant, subject_id)
    if not decision_ids and not erased:
        # Nothing was stored about them: no erasure to record, sign or count.
        raise NotFound("no personal data about this data subject is stored; nothing was erased")
    erased_at = datetime.now(UTC)
    record = await ledger.writer.record(
        tenant,
        [
            PreparedDecision(
                {
                    "agent": ERASURE_AGENT,
                    "action": ERASURE_ACTION,
                    "kind": "custom",
                    "metadata": {"decisions": decision_ids, "values_erased": erased},
                },
                [],
            )
        ],
    )
    receipt: dict[str, Any] = {
        "receipt_id": record[0].record["id"],
        "tenant": tenant,
        "erased_at": format_time(erased_at),
        "decisions": decision_ids,
        "values_erased": erased,
        "erasure_record_hash": record[0].record["hash"],
    }
    digest = hashlib.sha256(canonical_json(receipt)).digest()
    key_id, signature = keyring.sign(RECEIPT_DOMAIN, digest)
    metrics.erasures.inc()
    return {**receipt, "key_id": key_id, "signature": base64.b64encode(signature).decode()}


async def set_legal_hold(*, ledger: Ledger, tenant: str, subject_id: str, placed: bool) -> None:
    """Place (or release) a legal hold: erasure of the subject is refused while it is placed."""
    await ledger.subjects.set_legal_hold(tenant, subject_id, placed=placed)


async def legal_holds(*, ledger: Ledger, tenant: str) -> list[dict[str, str]]:
    """The legal holds in force in the tenant, oldest first. A hold is named by the data
    subject's random key, never by the person's id (which only an erasable event maps to it),
    with when it was placed."""
    query = (
        f"STREAM e FROM events WHERE e.type IN ('{HOLD_PLACED_TYPE}', '{HOLD_RELEASED_TYPE}') "
        "AND e.subject UNDER '/data-subjects'"
    )
    latest: dict[str, dict[str, Any]] = {}
    for event in await ledger.genesis.q(query):
        latest[str(event["subject"])] = event  # events come in commit order
    holds = []
    for subject, event in latest.items():
        key, _, rest = subject.removeprefix("/data-subjects/").partition("/")
        if event["type"] != HOLD_PLACED_TYPE or f"/{rest}" != _hold_suffix(tenant):
            continue
        holds.append({"subject_key": key, "placed_at": str(event["data"].get("at", ""))})
    return sorted(holds, key=lambda hold: hold["placed_at"])


def _hold_suffix(tenant: str) -> str:
    return subject_path(tenant, "").removeprefix("/data-subjects/") + "/hold"
