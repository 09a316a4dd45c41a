"""The auditor console's audit pages: integrity (a verification run in the background with
its progress, checkpoints, consistency) and compliance (the signed report, its downloads, the
erasure register, legal holds, key rotations)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from decisiontrail import compliance, erasure, integrity, reports
from decisiontrail.api.reports import signed_report_response
from decisiontrail.apikeys import Scope
from decisiontrail.console.auth import ConsoleUser, UserDep
from decisiontrail.console.inputs import (
    OptionalQuery,
    Text,
    check_csrf,
    filled_in,
    guarded,
    parse_time,
)
from decisiontrail.console.rendering import render
from decisiontrail.deps import StateDep
from decisiontrail.errors import Unprocessable
from decisiontrail.report_model import ComplianceReport
from decisiontrail.verification import CheckpointError
from ledgerstore import merkle

router = APIRouter(prefix="/console", include_in_schema=False)
log = logging.getLogger("decisiontrail")


# ---------------------------------------------------------------------------------------------
# Integrity


def last_verifications(request: Request) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = request.app.state.console_verifications
    return runs


async def _integrity_page(
    request: Request,
    user: ConsoleUser,
    state: StateDep,
    consistency: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    user.require(Scope.READ)
    try:
        checkpoints = await integrity.stored_checkpoints(
            ledger=state.ledger, trust=state.keyring.trust, tenant=user.tenant
        )
        bad_checkpoint = None
    except CheckpointError as exc:
        checkpoints, bad_checkpoint = [], str(exc)
    context = {
        "user": user,
        "checkpoints": list(reversed(checkpoints))[:50],
        "checkpoint_count": len(checkpoints),
        "bad_checkpoint": bad_checkpoint,
        "verification": last_verifications(request).get(user.tenant),
        "consistency": consistency,
    }
    return render(request, "integrity.html", context, status_code=status_code)


@router.get("/integrity")
async def integrity_view(
    request: Request,
    user: UserDep,
    state: StateDep,
    from_size: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    to_size: Annotated[str | None, Query(alias="to", max_length=20)] = None,
) -> Response:
    """A form left empty sends ``to=``: sizes are read here, not by the query validator."""

    async def build() -> Response:
        user.require(Scope.READ)
        consistency = None
        if from_size:
            first, second = _size(from_size, "from"), _size(to_size, "to") if to_size else None
            consistency = await _consistency(state, user, first, second)
        return await _integrity_page(request, user, state, consistency)

    return await guarded(request, user, build)


def _size(text: str, name: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise Unprocessable(f"{name} must be a tree size of at least 1")
    return int(text)


async def _consistency(
    state: StateDep, user: ConsoleUser, from_size: int, to_size: int | None
) -> dict[str, Any]:
    size, old_root, new_root, proof = await integrity.consistency(
        ledger=state.ledger, tenant=user.tenant, from_size=from_size, to_size=to_size
    )
    merkle.verify_consistency(from_size, size, old_root, new_root, proof)  # checked, not trusted
    return {
        "from": from_size,
        "to": size,
        "from_root": old_root.hex(),
        "to_root": new_root.hex(),
        "proof": [h.hex() for h in proof],
    }


@router.post("/integrity/verify")
async def run_verification(
    request: Request, user: UserDep, state: StateDep, csrf: Text
) -> Response:
    """Start a verification of the tenant's trail in the background (one at a time per
    tenant) and go to the integrity page, which shows its progress and then its result."""

    async def build() -> Response:
        check_csrf(user, csrf)
        user.require(Scope.AUDIT)
        runs = last_verifications(request)
        if not (runs.get(user.tenant) or {}).get("running"):
            current = await integrity.current_checkpoint(ledger=state.ledger, tenant=user.tenant)
            size = current.size
            run: dict[str, Any] = {"running": True, "checked": 0, "total": size}
            runs[user.tenant] = run
            task = asyncio.create_task(_verify(state, user.tenant, run))
            _RUNNING.add(task)  # keep a reference until it is done
            task.add_done_callback(_RUNNING.discard)
        return RedirectResponse("/console/integrity", status_code=303)

    return await guarded(request, user, build)


_RUNNING: set[asyncio.Task[None]] = set()


async def _verify(state: StateDep, tenant: str, run: dict[str, Any]) -> None:
    def checked(count: int) -> None:
        run["checked"] = count

    try:
        answer = await integrity.verify_tenant(
            ledger=state.ledger, trust=state.keyring.trust, tenant=tenant, progress=checked
        )
        state.metrics.verifications.labels("ok" if answer["ok"] else "failed").inc()
        run["answer"] = answer
    except Exception as exc:  # shown on the page; the next run starts afresh
        log.exception("console verification failed", extra={"tenant": tenant})
        run["error"] = type(exc).__name__
    finally:
        run["at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        run["running"] = False


@router.get("/integrity/progress")
async def verification_progress(request: Request, user: UserDep) -> dict[str, Any]:
    """How far the running verification is, for the integrity page's script."""
    user.require(Scope.READ)
    run = last_verifications(request).get(user.tenant) or {}
    return {"running": bool(run.get("running")), "checked": run.get("checked", 0),
            "total": run.get("total", 0)}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Compliance


def _period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    period_to = parse_time(until, "to") or datetime.now(UTC) + timedelta(seconds=1)
    period_from = parse_time(since, "from") or period_to - timedelta(days=30)
    if period_from >= period_to:
        raise Unprocessable("from must be before to")
    return period_from, period_to


Since = Annotated[str | None, Query(alias="from", max_length=40)]
Until = Annotated[str | None, Query(alias="to", max_length=40)]


async def _report(
    state: StateDep, user: ConsoleUser, since: str | None, until: str | None, agent: str | None
) -> ComplianceReport:
    user.require(Scope.AUDIT)
    period_from, period_to = _period(since, until)
    return await compliance.build_report(
        ledger=state.ledger, keyring=state.keyring, tenant=user.tenant,
        period_from=period_from, period_to=period_to, agent=agent or None,
        retention_days=state.settings.retention_days,
    )  # fmt: skip


@router.get("/compliance")
async def compliance_view(
    request: Request,
    user: UserDep,
    state: StateDep,
    since: Since = None,
    until: Until = None,
    agent: OptionalQuery = None,
) -> Response:
    async def build() -> Response:
        report = await _report(state, user, since, until, agent)
        holds = None
        if user.can(Scope.ERASE):
            holds = await erasure.legal_holds(ledger=state.ledger, tenant=user.tenant)
        context = {
            "user": user,
            "holds": holds,
            "report": report,
            "signature": compliance.sign_report(reports.render_json(report), state.keyring),
            "query": filled_in(agent=agent, **{"from": since, "to": until}),
        }
        return render(request, "compliance.html", context)

    return await guarded(request, user, build)


@router.get("/compliance/download")
async def compliance_download(
    request: Request,
    user: UserDep,
    state: StateDep,
    format: Annotated[str, Query(pattern="^(json|csv|html)$")] = "json",
    since: Since = None,
    until: Until = None,
    agent: OptionalQuery = None,
) -> Response:
    async def build() -> Response:
        report = await _report(state, user, since, until, agent)
        return signed_report_response(report, state.keyring, format, download=True)

    return await guarded(request, user, build)
