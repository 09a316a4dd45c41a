"""The FastAPI application: ``create_app(settings)`` with a lifespan that opens the stores."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from decisiontrail import __version__
from decisiontrail.api import decisions, health, integrity, reports, subjects, traces, trust
from decisiontrail.config import Settings
from decisiontrail.console.install import install_console
from decisiontrail.errors import install_problem_handlers, problem
from decisiontrail.logs import AccessLogMiddleware, configure_logging
from decisiontrail.metrics import instrument_http
from decisiontrail.state import ServiceState
from decisiontrail.tracing import TracingMiddleware, configure_tracing

log = logging.getLogger("decisiontrail")


REPAIR_EVERY = 10  # checkpoint intervals between repair passes (see decisiontrail.ledger.repair)


async def _issue_checkpoints(state: ServiceState) -> None:
    """Sign a checkpoint of every tenant this process has written to, periodically, and now
    and then tombstone SapixDB records whose Genesis DB commit failed with no answer."""
    issued: dict[str, int] = {}
    for tick in itertools.count(1):
        await asyncio.sleep(state.settings.checkpoint_interval_seconds)
        if tick % REPAIR_EVERY == 0:
            try:
                await state.ledger.repair.run()
            except Exception:  # retried at the next pass
                log.exception("repair pass failed")
        for tenant in list(state.ledger.heads.tenants()):
            try:
                head = await state.ledger.heads.head(tenant)
                if head.size and issued.get(tenant) != head.size:
                    checkpoint = await state.ledger.tree.issue_checkpoint(tenant)
                    issued[tenant] = checkpoint.size
            except Exception:  # a failed round is retried at the next interval
                log.exception("periodic checkpoint failed", extra={"tenant": tenant})


class BodyLimitMiddleware:
    """413 problem+json for a body over ``limit`` bytes, by its Content-Length or, without one,
    as it arrives (then buffered and replayed). Plain ASGI: no per-request task or copy."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                await self._too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server stops at Content-Length
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        buffered: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return buffered.pop() if buffered else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, "payload_too_large", "Request body too large",
            f"the body limit is {self.limit} bytes", instance=scope.get("path"),
        )  # fmt: skip
        await response(scope, receive, send)


# Pages are ours and load only from this origin; the API docs pages (Swagger UI, ReDoc) start
# themselves with an inline script and ReDoc renders in a blob worker.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options: nosniff`` on every response, and a Content-Security-Policy
    header on every HTML one that does not set its own (the compliance report does)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if scope["path"].startswith(DOCS_PATHS) else PAGE_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                html = headers.get("content-type", "").startswith("text/html")
                if html and "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = policy
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None, *, state: ServiceState | None = None) -> FastAPI:
    """The service. Tracing is set up once per process from ``OTEL_*``; logging only where the
    process has none yet (``decisiontrail serve`` sets it up before it calls this)."""
    settings = settings or Settings()
    configure_tracing()
    configure_logging(settings.log_level, settings.log_format, force=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = state or await ServiceState.open(settings)
        # A crash between the SapixDB write and the Genesis DB commit leaves records no read
        # confirms; tombstone them (and re-write lost edges) before serving.
        await service.ledger.repair.run()
        for worker in service.ledger.workers():
            await worker.start()  # now, not on the first request
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

    app = FastAPIOffline(  # /docs and /redoc from assets in the package, not a CDN
        title="DecisionTrail",
        version=__version__,
        description="A tamper-evident audit trail for the decisions of AI agents.",
        lifespan=lifespan,
        # FastAPI's own request spans record the raw path, which can hold a data subject's id;
        # TracingMiddleware records the route template instead.
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    install_problem_handlers(app)

    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)  # inside the span, so its line has the trace id
    app.add_middleware(SecurityHeadersMiddleware)
    app.state.http_metrics = instrument_http(app)
    app.add_middleware(TracingMiddleware)  # outermost of ours: spans cover the body limit too
    app.include_router(health.router)
    app.include_router(decisions.router)
    app.include_router(integrity.router)
    app.include_router(subjects.router)
    app.include_router(subjects.holds_router)
    app.include_router(reports.router)
    app.include_router(trust.router)
    app.include_router(traces.router)
    install_console(app)
    return app
