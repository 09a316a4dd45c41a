"""One batch's Genesis DB commit, with its outcome always known.

A commit can fail in two ways: surely (a lost precondition, a refused batch: nothing was
written) or with an unknown outcome (a lost connection, a timeout, a worker process that died:
the store may have written it). Nothing is retried or answered before an unknown outcome is
resolved: every batch carries a precondition that its *attempt subject* is new, and resolving
commits a fence event there guarded by "the batch's first decision is new". If the fence goes
in, the batch did not land and never will (its own precondition now fails); if the fence loses
its precondition, the batch landed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from decisiontrail.ledger.events import event, is_new, tenant_path
from decisiontrail.ledger.failures import CommitOutcomeUnknownError, StoreCorruptedError
from decisiontrail.store_workers import GenesisWorker, WorkerUnavailable
from genesisdb import (
    AuthenticationError,
    BadRequestError,
    Client,
    EventTooLargeError,
    GenesisDBError,
    PermissionDeniedError,
    PreconditionFailedError,
    SchemaViolationError,
    StorageError,
)

# Commit failures after which nothing was written for sure.
DEFINITE_FAILURES = (
    PreconditionFailedError,
    AuthenticationError,
    BadRequestError,
    EventTooLargeError,
    PermissionDeniedError,
    SchemaViolationError,
)
FENCE_TYPE = "io.decisiontrail.commit.abandoned"
RESOLVE_ATTEMPTS = 4  # fence commits tried before the outcome is reported unknown
RESOLVE_PAUSE_SECONDS = 0.2  # first pause between them (doubling)


def attempt_subject(tenant: str, first_decision_id: str) -> str:
    """The subject a batch requires to be new and a fence claims (named by its first id)."""
    return f"{tenant_path(tenant)}/commit-attempts/{first_decision_id}"


class Committer:
    def __init__(self, genesis: Client, worker: GenesisWorker | None = None) -> None:
        self.genesis = genesis
        self.worker = worker  # commits in a child process (embedded Genesis DB)

    async def commit(
        self,
        events: list[dict[str, Any]],
        preconditions: list[dict[str, Any]],
        *,
        attempt: str,
        first: str,
        in_worker: bool,
    ) -> None:
        """Commit a batch whose first event is at ``first`` and whose preconditions include
        ``is_new(attempt)``. Returns once it landed; raises a definite failure if it surely
        did not, and :class:`CommitOutcomeUnknownError` if that cannot be learned. Any other
        store error means it surely did not land (resolved)."""
        worker = self.worker
        if in_worker and worker is not None and not worker.disabled:
            try:
                await worker.commit_events(events, preconditions)
                return
            except WorkerUnavailable:
                # The child is gone, so no commit of it can still arrive: the batch's first
                # subject says whether it went in; if not, commit it here.
                if await self.genesis.stream_events(first):
                    return
        try:
            await self.genesis.commit_events(events, preconditions)
            return
        except DEFINITE_FAILURES:
            raise
        except (GenesisDBError, OSError, TimeoutError) as exc:
            failure = exc
        if isinstance(failure, StorageError):
            await self.check_integrity()  # "too busy" forever may be a forged row
        if await self.landed(attempt=attempt, first=first):
            return
        raise failure

    async def check_integrity(self) -> None:
        """Raise :class:`StoreCorruptedError` if the store's own hash chain is broken (a row
        written behind its back makes every later commit fail, which looks like contention)."""
        try:
            audit = await self.genesis.audit()
        except GenesisDBError:
            return  # unreachable: the outcome check below reports that
        if not audit.get("valid", True):
            raise StoreCorruptedError(
                "Genesis DB's hash chain is broken at event "
                f"{audit.get('firstInvalid')}: the store holds data the service never wrote"
            )

    async def landed(self, *, attempt: str, first: str) -> bool:
        """Whether a batch whose commit had an unknown outcome landed; if it did not, it now
        never will."""
        fence = [event(attempt, FENCE_TYPE, {"first": first})]
        pause = RESOLVE_PAUSE_SECONDS
        for _ in range(RESOLVE_ATTEMPTS):
            try:
                await self.genesis.commit_events(fence, [is_new(first)])
            except PreconditionFailedError:
                return True
            except GenesisDBError:
                await asyncio.sleep(pause)
                pause *= 2
                continue
            return False
        raise CommitOutcomeUnknownError(
            "the store did not answer whether the decisions were recorded; "
            "retry with the same Idempotency-Key"
        )
