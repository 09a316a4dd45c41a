"""The pipelined group-commit writer: one writer task per tenant takes every request waiting
when it is free (up to ``MAX_GROUP`` decisions) and commits them as one batch, so concurrent
single-decision requests share a commit instead of queueing for one each.

Each request still succeeds or fails on its own: a group that fails is halved until the bad
request is alone. That is safe because a failure reaches this module only with its outcome
known (:mod:`decisiontrail.ledger.commit` resolves an unknown one first): a batch that may
have landed is never sealed again.

Pipelining: while one group commits, the next is sealed and written to SapixDB on the head the
first will leave; only success is pipelined, a failed commit sends the next group back to be
sealed again. A batch whose log start another writer took loses its precondition; the writer
reloads the head and retries.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import Link

from decisiontrail.ledger.commit import Committer, attempt_subject
from decisiontrail.ledger.events import PreparedDecision, Receipt, done_future, is_new
from decisiontrail.ledger.failures import (
    CommitOutcomeUnknownError,
    ConflictRetriesExhaustedError,
    IdempotencyKeyInFlightError,
    LedgerError,
)
from decisiontrail.ledger.outbox import Outbox
from decisiontrail.ledger.sealing import Answer, Batch, Request, Sealer
from decisiontrail.ledger.subjects import Subjects
from decisiontrail.ledger.tree import Heads
from decisiontrail.tracing import tracer
from genesisdb import PreconditionFailedError

log = logging.getLogger("decisiontrail")

MAX_CLAIM_RETRIES = 20
MAX_GROUP = 1_000  # decisions per group commit (a single larger request goes alone)

_Ahead = tuple[list[Request], "asyncio.Task[Batch]"]  # a group sealed ahead, and its sealing


class Writer:
    def __init__(
        self,
        heads: Heads,
        sealer: Sealer,
        subjects: Subjects,
        outbox: Outbox,
        committer: Committer,
    ) -> None:
        self.heads = heads
        self.sealer = sealer
        self.subjects = subjects
        self.outbox = outbox
        self.committer = committer
        self._pending: dict[str, list[Request]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._answering: dict[str, asyncio.Task[None]] = {}  # the last group's answer
        self._in_flight: set[tuple[str, str]] = set()  # (tenant, Idempotency-Key)

    async def record(
        self,
        tenant: str,
        decisions: Sequence[PreparedDecision],
        *,
        idempotency_key: str | None = None,
        body_hash: str | None = None,
    ) -> list[Receipt]:
        """Seal, chain and commit decisions atomically; retried claims never fork a chain.

        An Idempotency-Key seen before is answered with its first result (``replayed``), or
        refused if its first request had another ``body_hash``; one still being recorded is
        refused with :class:`IdempotencyKeyInFlightError`.
        """
        if not decisions:
            raise LedgerError("nothing to record")
        keyed = None if idempotency_key is None else (tenant, idempotency_key)
        if keyed is not None:
            if keyed in self._in_flight:
                raise IdempotencyKeyInFlightError(
                    "a request with this Idempotency-Key is still being recorded"
                )
            self._in_flight.add(keyed)
        try:
            future = asyncio.get_running_loop().create_future()
            span = trace.get_current_span().get_span_context()
            request = Request(decisions, idempotency_key, body_hash, future, span)
            self._pending.setdefault(tenant, []).append(request)
            writer = self._writers.get(tenant)
            if writer is None or writer.done():
                # Its own task (a caller that goes away cannot cancel others' commits) with
                # an empty context, so its spans and logs do not join the first caller's trace.
                self._writers[tenant] = asyncio.create_task(
                    self._write_pending(tenant), context=contextvars.Context()
                )
            with tracer.start_as_current_span("decision.store"):
                return await asyncio.shield(request.future)
        finally:
            if keyed is not None:
                self._in_flight.discard(keyed)

    async def _write_pending(self, tenant: str) -> None:
        pending = self._pending.setdefault(tenant, [])
        ahead: _Ahead | None = None
        while pending or ahead is not None:
            if ahead is not None:
                group, preparing = ahead
            else:
                group, preparing = self._take(pending), None
            ahead = None
            try:
                ahead = await self._write_group(tenant, group, preparing)
            except BaseException as exc:  # never leave a caller waiting
                for request in group:
                    if not request.future.done():
                        request.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    @staticmethod
    def _take(pending: list[Request]) -> list[Request]:
        """The next group: waiting requests, in order, up to MAX_GROUP decisions."""
        group: list[Request] = []
        size = 0
        while pending and (not group or size + len(pending[0].decisions) <= MAX_GROUP):
            request = pending.pop(0)
            group.append(request)
            size += len(request.decisions)
        return group

    async def _write_group(
        self, tenant: str, group: list[Request], preparing: asyncio.Task[Batch] | None
    ) -> _Ahead | None:
        """Commit a group; while it commits, seal the next one (and write its SapixDB records)
        on the head this one will leave. Returns that next group, sealed or being sealed."""
        links = [Link(r.span) for r in group if r.span.is_valid]
        ahead: _Ahead | None = None
        with tracer.start_as_current_span("decision.commit", links=links) as span:
            span.set_attribute("decisiontrail.requests", len(group))
            try:
                if preparing is None:
                    head = await self.heads.head(tenant)
                    batch = await self.sealer.prepare(tenant, group, head, {})
                else:
                    batch = await preparing
            except Exception as exc:
                await self._failed(tenant, group, exc)
                return None
            committing = asyncio.create_task(self._finish(tenant, batch))
            pending = self._pending[tenant]
            try:
                if pending:
                    following = self._take(pending)
                    prepare = self.sealer.prepare(
                        tenant, following, batch.new_head, batch.fresh_keys
                    )
                    ahead = (following, asyncio.create_task(prepare))
                results, linking = await committing
            except PreconditionFailedError:
                if ahead is not None:
                    await self._put_back(tenant, ahead)
                await self._lost_claim(tenant)
                await self._commit_group(tenant, group)
                return None
            except Exception as exc:
                if ahead is not None:
                    await self._put_back(tenant, ahead)
                await self._failed(tenant, group, exc)
                return None
            except BaseException as exc:
                if ahead is not None:
                    ahead[1].cancel()
                    for request in ahead[0]:
                        if not request.future.done():
                            request.future.set_exception(exc)
                raise
        await self._answer(tenant, group, results, linking)
        return ahead

    async def _lost_claim(self, tenant: str) -> None:
        """Another writer moved the head, or a cached subject key was erased: catch up."""
        self.subjects.forget(tenant)
        await self.heads.head(tenant, reload=True)

    async def _put_back(self, tenant: str, ahead: _Ahead) -> None:
        """Undo a group sealed ahead on a head that did not come to be: tombstone its SapixDB
        records and queue its requests first again."""
        group, preparing = ahead
        try:
            batch = await preparing
        except Exception:
            pass  # it cleaned up after itself
        else:
            await self.outbox.discard(batch.receipts)
        finally:
            self._pending[tenant][:0] = group  # even if cancelled: the next writer takes them

    async def _commit_group(self, tenant: str, group: list[Request]) -> None:
        """The careful path: commit with retries; a group that fails is halved until the bad
        request is alone."""
        try:
            results, linking = await self._commit(tenant, group)
        except Exception as exc:
            await self._failed(tenant, group, exc)
            return
        await self._answer(tenant, group, results, linking)

    async def _failed(self, tenant: str, group: list[Request], exc: Exception) -> None:
        """A group surely not recorded: one request alone gets the error; more are halved and
        retried, so that one bad request does not fail the others. A group whose outcome
        stayed unknown is answered as such, never retried (it may have been recorded)."""
        if len(group) == 1 or isinstance(exc, CommitOutcomeUnknownError):
            for request in group:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        middle = len(group) // 2
        await self._commit_group(tenant, group[:middle])
        await self._commit_group(tenant, group[middle:])

    async def _answer(
        self,
        tenant: str,
        group: list[Request],
        results: list[Answer],
        linking: asyncio.Future[None],
    ) -> None:
        """The group is committed; its callers are answered once its edges are written too,
        while the next group goes on (at most one group's edges behind)."""
        previous = self._answering.get(tenant)
        self._answering[tenant] = asyncio.create_task(
            self._answer_after_edges(tenant, group, results, linking)
        )
        if previous is not None:
            await previous

    async def _answer_after_edges(
        self,
        tenant: str,
        group: list[Request],
        results: list[Answer],
        linking: asyncio.Future[None],
    ) -> None:
        try:
            await linking
        except BaseException:
            # Committed and in both stores; only the derived edges are missing. The repair
            # pass writes them again (see decisiontrail.ledger.repair).
            log.exception("graph edges were not written", extra={"tenant": tenant})
        finally:
            for request, answer in zip(group, results, strict=True):
                if request.future.done():
                    continue
                if isinstance(answer, LedgerError):
                    request.future.set_exception(answer)
                else:
                    request.future.set_result(answer)

    async def _commit(
        self, tenant: str, group: list[Request]
    ) -> tuple[list[Answer], asyncio.Future[None]]:
        """Commit a group's decisions as one batch, retrying on a moved head: each request's
        answer, and the task writing the batch's graph edges."""
        for _ in range(MAX_CLAIM_RETRIES):
            head = await self.heads.head(tenant)
            batch = await self.sealer.prepare(tenant, group, head, {})
            try:
                return await self._finish(tenant, batch)
            except PreconditionFailedError:
                await self._lost_claim(tenant)
        raise ConflictRetriesExhaustedError("the log head kept moving; retry the request")

    async def _finish(self, tenant: str, batch: Batch) -> tuple[list[Answer], asyncio.Future[None]]:
        """Commit a prepared batch to Genesis DB, its graph edges written meanwhile: each
        request's answer and the edges' task. A commit that surely wrote nothing tombstones
        the batch's SapixDB records; one whose outcome stayed unknown leaves them to the
        repair pass."""
        if not batch.fresh:
            return batch.answers(), done_future()
        # The edges (derived data) go in while Genesis DB commits: another file, another
        # fsync, in parallel.
        records = [r.record for r in batch.receipts]
        linking = asyncio.create_task(
            self.outbox.link(tenant, records, batch.subject_keys, batch.in_workers)
        )
        first = batch.events[0]["subject"]
        attempt = attempt_subject(tenant, batch.receipts[0].record["id"])
        try:
            with (
                tracer.start_as_current_span("decision.store.genesisdb"),
                self.outbox.store_call("genesisdb", "commit"),
            ):
                await self.committer.commit(
                    batch.events, [*batch.preconditions, is_new(attempt)],
                    attempt=attempt, first=first, in_worker=batch.in_workers,
                )  # fmt: skip
        except CommitOutcomeUnknownError:
            await asyncio.gather(linking, return_exceptions=True)
            raise
        except Exception:  # resolved: surely not landed
            await asyncio.gather(linking, return_exceptions=True)
            await self.outbox.discard(batch.receipts)
            raise
        except BaseException:
            await asyncio.gather(linking, return_exceptions=True)
            raise
        self.heads.advance(tenant, batch.new_head)
        self.subjects.remember(batch.fresh_keys)
        return batch.answers(), linking
