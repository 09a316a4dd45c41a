"""The FastAPI application: ``create_app(settings)`` with a lifespan that opens the stores."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from decisiontrail import __version__
from decisiontrail.api import decisions, health, integrity, reports, subjects
from decisiontrail.config import Settings
from decisiontrail.errors import install_problem_handlers, problem
from decisiontrail.state import ServiceState

log = logging.getLogger("decisiontrail")


async def _issue_checkpoints(state: ServiceState) -> None:
    """Sign a checkpoint of every tenant this process has written to, periodically."""
    issued: dict[str, int] = {}
    while True:
        await asyncio.sleep(state.settings.checkpoint_interval_seconds)
        for tenant in list(state.ledger.tenants()):
            try:
                head = await state.ledger.head(tenant)
                if head.size and issued.get(tenant) != head.size:
                    checkpoint = await state.ledger.checkpoint(tenant)
                    issued[tenant] = checkpoint.size
            except Exception:  # a failed round is retried at the next interval
                log.exception("periodic checkpoint failed", extra={"tenant": tenant})


def create_app(settings: Settings | None = None, *, state: ServiceState | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = state or await ServiceState.open(settings)
        app.state.service = service
        ticker = asyncio.create_task(_issue_checkpoints(service))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            if state is None:
                await service.close()

    app = FastAPI(
        title="DecisionTrail",
        version=__version__,
        description="A tamper-evident audit trail for the decisions of AI agents.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        limit = settings.max_body_bytes
        too_large = problem(
            413,
            "payload_too_large",
            "Request body too large",
            f"the body limit is {limit} bytes",
            instance=request.url.path,
        )
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return too_large
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    return too_large
            request._body = body  # the route reads what was buffered here
        return await call_next(request)

    app.include_router(health.router)
    app.include_router(decisions.router)
    app.include_router(integrity.router)
    app.include_router(subjects.router)
    app.include_router(reports.router)
    return app
