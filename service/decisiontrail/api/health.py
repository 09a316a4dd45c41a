from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from decisiontrail.deps import MetricsKey, StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "Not ready (the same body: which check failed)"}}
)
async def readyz(state: StateDep, response: Response) -> dict[str, Any]:
    """The stores answer and a signing key is loaded."""
    checks: dict[str, str] = {}
    try:
        await state.genesis.ping()
        checks["genesisdb"] = "ok"
    except Exception as exc:  # any failure means not ready; say which kind
        checks["genesisdb"] = type(exc).__name__
    checks["sapixdb"] = "ok" if await state.sapix.ping() else "unreachable"
    try:
        state.keyring.active()
        checks["signing_key"] = "ok"
    except Exception as exc:
        checks["signing_key"] = type(exc).__name__
    ready = all(value == "ok" for value in checks.values())
    response.status_code = 200 if ready else 503
    return {"status": "ready" if ready else "not ready", "checks": checks}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, key: MetricsKey, state: StateDep) -> Response:
    """Prometheus text, for a key with the ``metrics`` scope (Prometheus sends it with
    ``authorization: {credentials: …}``): the service's own metrics and its HTTP metrics."""
    state.metrics.refresh()
    body = generate_latest(state.metrics.registry) + generate_latest(request.app.state.http_metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
