"""Embedded mode: batches go straight into a trail in a local directory, no service running.

Needs the full ``decisiontrail`` package (imported here only, lazily). The trail is opened the
way the service opens it (``ServiceState.open``, the repair pass) and each batch is recorded
through the same keyword-only service function the batch endpoint calls, under the batch's
idempotency key, on a private event loop in a thread of its own. Store writes stay in this
process (no worker processes: a notebook or a script is one process).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from decisiontrail_client.transport import Outcome, SendResult

T = TypeVar("T")


class EmbeddedTransport:
    def __init__(self, directory: Path, *, tenant: str = "default") -> None:
        try:
            from decisiontrail.config import Settings
            from decisiontrail.state import ServiceState
        except ImportError as exc:  # the light install: say what to install
            raise RuntimeError(
                "embedded mode needs the full decisiontrail package (pip install decisiontrail)"
            ) from exc
        self._tenant = tenant
        self._forked = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="decisiontrail-embedded", daemon=True
        )
        self._thread.start()
        settings = Settings(data_dir=directory, store_workers=False)

        async def open_trail() -> Any:
            state = await ServiceState.open(settings)
            await state.ledger.repair.run()  # as the service does before it serves
            return state

        self._state = self._call(open_trail())

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def send(self, key: str, records: list[dict[str, Any]]) -> SendResult:
        from pydantic import ValidationError

        from decisiontrail import decisions
        from decisiontrail.errors import ServiceError, StoreUnavailable, Unprocessable
        from decisiontrail.models import DecisionCreate

        if self._forked:
            return SendResult(Outcome.RETRY, detail="forked child of an embedded trail")
        try:
            batch = [DecisionCreate.model_validate(record) for record in records]
        except ValidationError as exc:
            return SendResult(Outcome.REJECTED, detail=f"{exc.error_count()} validation errors")
        state = self._state
        try:
            self._call(
                decisions.record_decisions(
                    ledger=state.ledger,
                    metrics=state.metrics,
                    tenant=self._tenant,
                    decisions=batch,
                    idempotency_key=key,
                    endpoint="embedded",
                )
            )
        except Unprocessable as exc:
            return SendResult(Outcome.REJECTED, detail=type(exc).__name__)
        except (StoreUnavailable, ServiceError) as exc:
            return SendResult(Outcome.RETRY, detail=type(exc).__name__)
        return SendResult(Outcome.DELIVERED)

    def read(self, agent: str) -> list[dict[str, Any]]:
        """The agent's decisions in this trail, newest first (for notebooks and tests)."""
        from decisiontrail import decisions
        from decisiontrail.provenance import ListFilter

        state = self._state
        page = self._call(
            decisions.list_decisions(
                ledger=state.ledger,
                tenant=self._tenant,
                where=ListFilter(agent=agent),
                data_subject=None,
                cursor=None,
                as_of=None,
                limit=decisions.MAX_PAGE,
            )
        )
        return [item["record"] for item in page["data"]]

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self._state.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def after_fork(self) -> None:
        """A forked child cannot use the parent's event loop thread: its records wait in the
        spool for the next process that opens this trail."""
        self._forked = True
