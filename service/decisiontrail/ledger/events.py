"""The ledger's event schema: every Genesis DB subject and event type the ledger writes, and
the small value types that travel between the ledger's modules.

Events (agent and tenant names are percent-encoded, data-subject ids never appear):

- ``/tenants/{t}/agents/{a}/decisions/{id}``  ``io.decisiontrail.decision.recorded``:
  ``{"record": <sealed record>, "log_index": n}``
- ``/tenants/{t}/decisions/{id}``  ``io.decisiontrail.decision.indexed``: the agent, log
  index and SapixDB id, so a decision is found by id with two indexed lookups
- ``/tenants/{t}/personal/{id}``  ``io.decisiontrail.personal.stored`` — stored as reference
  (erasable): the decision's personal values with their salts
- ``/tenants/{t}/subject-keys/{epoch}/{HMAC-SHA256(epoch secret, subject id)}``
  ``io.decisiontrail.subject.key`` — stored as reference (erasable): a random key naming the
  data subject everywhere else, and the subject id (for the next epoch's rewrite); see
  :mod:`decisiontrail.ledger.subjects` and :mod:`decisiontrail.ledger.epochs`
- ``/tenants/{t}/subject-epochs/{epoch}`` (erasable: the epoch's secret) and
  ``/tenants/{t}/subject-epochs-done/{epoch}`` (the rotation into it finished)
- ``/data-subjects/{key}/tenants/{t}/decisions/{id}``  ``io.decisiontrail.subject.linked``
- ``/data-subjects/{key}/tenants/{t}/hold``  legal hold placed / released, and erasure
  started (committed only while no hold is placed)
- ``/tenants/{t}/erased-keys/{key}``  ``io.decisiontrail.subject.key-erased``: committed with
  the erasure's start; every batch that links to an existing key requires this subject new
- ``/tenants/{t}/log/{start}``  ``io.decisiontrail.log.batch``: where a batch starts, how many
  records it holds, and the tile frontier after it (the unfinished tile of every level)
- ``/tenants/{t}/chains/{a}``  ``io.decisiontrail.chain.head``: a chain's next sequence number
  and last hash, after every batch that touched it
- ``/tenants/{t}/tiles/{level}/{index}``  ``io.decisiontrail.tile``: a full tlog tile
- ``/tenants/{t}/idempotency/{sha256(key)}``  ``io.decisiontrail.idempotency``
- ``/tenants/{t}/checkpoints/{size:020d}``  ``io.decisiontrail.checkpoint``
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from decisiontrail.tlog import TileFrontier

SOURCE = "decisiontrail"
DECISION_TYPE = "io.decisiontrail.decision.recorded"
INDEX_TYPE = "io.decisiontrail.decision.indexed"
PERSONAL_TYPE = "io.decisiontrail.personal.stored"
SUBJECT_LINK_TYPE = "io.decisiontrail.subject.linked"
BATCH_TYPE = "io.decisiontrail.log.batch"
CHAIN_HEAD_TYPE = "io.decisiontrail.chain.head"
TILE_TYPE = "io.decisiontrail.tile"
IDEMPOTENCY_TYPE = "io.decisiontrail.idempotency"
CHECKPOINT_TYPE = "io.decisiontrail.checkpoint"
SUBJECT_KEY_TYPE = "io.decisiontrail.subject.key"
HOLD_PLACED_TYPE = "io.decisiontrail.legal-hold.placed"
HOLD_RELEASED_TYPE = "io.decisiontrail.legal-hold.released"
ERASURE_STARTED_TYPE = "io.decisiontrail.erasure.started"  # at the hold subject: no hold then
KEY_ERASED_TYPE = "io.decisiontrail.subject.key-erased"


def tenant_path(tenant: str) -> str:
    return f"/tenants/{quote(tenant, safe='')}"


def decision_subject(tenant: str, agent: str, decision_id: str) -> str:
    return f"{tenant_path(tenant)}/agents/{quote(agent, safe='')}/decisions/{decision_id}"


def index_subject(tenant: str, decision_id: str) -> str:
    return f"{tenant_path(tenant)}/decisions/{decision_id}"


def personal_subject(tenant: str, decision_id: str) -> str:
    return f"{tenant_path(tenant)}/personal/{decision_id}"


def batch_subject(tenant: str, start: int) -> str:
    return f"{tenant_path(tenant)}/log/{start}"


def chain_subject(tenant: str, agent: str) -> str:
    return f"{tenant_path(tenant)}/chains/{quote(agent, safe='')}"


def tile_subject(tenant: str, level: int, index: int) -> str:
    return f"{tenant_path(tenant)}/tiles/{level}/{index}"


def checkpoint_subject(tenant: str, size: int) -> str:
    return f"{tenant_path(tenant)}/checkpoints/{size:020d}"


def subject_path(tenant: str, key: str) -> str:
    """Where a data subject's links within one tenant live, under the subject's key."""
    return f"/data-subjects/{key}/tenants/{quote(tenant, safe='')}"


def erased_key_subject(tenant: str, key: str) -> str:
    """Exists once a subject key is erased: a batch linking to the key requires it new."""
    return f"{tenant_path(tenant)}/erased-keys/{key}"


def idempotency_subject(tenant: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{tenant_path(tenant)}/idempotency/{digest}"


def event(
    subject: str, event_type: str, data: dict[str, Any], *, erasable: bool = False
) -> dict[str, Any]:
    """One event to commit; ``erasable`` data is stored by reference (``erase_data`` works)."""
    built: dict[str, Any] = {"source": SOURCE, "subject": subject, "type": event_type, "data": data}
    if erasable:
        built["options"] = {"store_data_as_reference": True}
    return built


def is_new(subject: str) -> dict[str, Any]:
    """The precondition that ``subject`` has no event yet."""
    return {"type": "isSubjectNew", "payload": {"subject": subject}}


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@dataclass
class TenantHead:
    """What a writer needs to append: every chain's head and the log's tile frontier."""

    chains: dict[str, tuple[int, str]] = field(default_factory=dict)  # agent -> (next seq, hash)
    frontier: TileFrontier = field(default_factory=TileFrontier)

    @property
    def size(self) -> int:
        return self.frontier.size


@dataclass(frozen=True)
class PreparedDecision:
    """A client's decision (as a plain JSON object) and its personal-field paths."""

    decision: dict[str, Any]
    personal: Sequence[str]


@dataclass(frozen=True)
class Receipt:
    """What the client gets back for a recorded decision."""

    record: dict[str, Any]
    log_index: int
    sapix_id: str | None = None  # the record's id in SapixDB (its provenance graph node)
    replayed: bool = False  # answered from an earlier request with the same Idempotency-Key

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "id": r["id"],
            "tenant": r["tenant"],
            "chain": r["chain"],
            "sequence": r["sequence"],
            "log_index": self.log_index,
            "hash": r["hash"],
            "prev_hash": r["prev_hash"],
            "signature": r["signature"],
            "key_id": r["key_id"],
            "recorded_at": r["recorded_at"],
        }


def done_future() -> asyncio.Future[None]:
    """A future already resolved (nothing left to wait for)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
