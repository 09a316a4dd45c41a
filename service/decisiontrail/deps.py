"""Request dependencies, declared once: the service state and the authenticated API key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from decisiontrail.apikeys import ApiKey, Scope
from decisiontrail.errors import Forbidden, RateLimited, Unauthorized
from decisiontrail.logs import bind_tenant
from decisiontrail.state import ServiceState


async def get_state(request: Request) -> ServiceState:  # async: no thread-pool hop
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.headers.get("x-api-key")


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, int(seconds + 0.999)))}


async def current_key(request: Request, state: StateDep) -> ApiKey:
    text = _presented_key(request)
    if not text:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    client = request.client.host if request.client else "unknown"
    wait = state.failed_auth.blocked(client)
    if wait is not None:
        raise RateLimited("too many failed authentications from here", headers=_retry_after(wait))
    key = await state.keys.authenticate(text)
    if key is None:
        state.failed_auth.failed(client)
        raise Unauthorized("the API key is unknown, revoked or expired")
    rate = key.rate_limit_per_second or state.settings.rate_limit_per_second
    if rate:
        wait = state.limiter.take(key.key_id, rate)
        if wait is not None:
            raise RateLimited(
                f"the key's limit is {rate:g} requests a second", headers=_retry_after(wait)
            )
    bind_tenant(key.tenant)  # on this request's log lines and span
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]


def require(scope: Scope) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    """A dependency that passes only keys holding ``scope`` (admin holds every scope)."""

    async def check(key: CurrentKey) -> ApiKey:
        if not key.allows(scope):
            raise Forbidden(f"this needs the {scope.value!r} scope")
        return key

    return check


IngestKey = Annotated[ApiKey, Depends(require(Scope.INGEST))]
ReadKey = Annotated[ApiKey, Depends(require(Scope.READ))]
AuditKey = Annotated[ApiKey, Depends(require(Scope.AUDIT))]
MetricsKey = Annotated[ApiKey, Depends(require(Scope.METRICS))]
