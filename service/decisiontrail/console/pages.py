"""The auditor console's pages: server-rendered HTML over the same keyword-only service
functions the API routes call, with the signed-in key's tenant and scopes.

Nothing personal goes into a URL: the data-subject filter is only accepted in a POSTed form,
and personal values are never shown (the console reads as a ``read`` key does without
``?personal=true``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sse_starlette.sse import EventSourceResponse

from decisiontrail import compliance, decisions, erasure, integrity, reports
from decisiontrail.api.reports import signed_report_response
from decisiontrail.apikeys import Scope
from decisiontrail.console.auth import ConsoleUser, UserDep, sessions_of
from decisiontrail.console.rendering import render
from decisiontrail.console.sessions import COOKIE, csrf_matches
from decisiontrail.deps import StateDep
from decisiontrail.errors import Forbidden, ServiceError, Unprocessable
from decisiontrail.models import DecisionKind
from decisiontrail.provenance import ListFilter
from decisiontrail.report_model import ComplianceReport
from decisiontrail.verification import CheckpointError
from ledgerstore import merkle

router = APIRouter(prefix="/console", include_in_schema=False)
log = logging.getLogger("decisiontrail")

Text = Annotated[str, Form(max_length=200)]
OptionalQuery = Annotated[str | None, Query(max_length=200)]
PAGE_SIZE = 25


async def _guarded(
    request: Request, user: ConsoleUser | None, build: Callable[[], Awaitable[Response]]
) -> Response:
    """The page, or the service's error rendered as a page with its status."""
    try:
        return await build()
    except ServiceError as exc:
        context = {"user": user, "status": exc.status, "title": exc.title, "detail": exc.detail}
        return render(request, "error.html", context, status_code=exc.status)


def _check_csrf(user: ConsoleUser, token: str | None) -> None:
    if not csrf_matches(user.session, token):
        raise Forbidden("the form is stale or was not sent by this console; reload the page")


# ---------------------------------------------------------------------------------------------
# Signing in and out


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return render(request, "sign_in.html", {"user": None, "error": None})


@router.post("/sign-in")
async def sign_in(request: Request, state: StateDep, api_key: Text) -> Response:
    # Another site cannot sign a visitor in with its own key (login CSRF): a browser sends
    # Origin on a form POST; when it does, it must be this console's.
    origin = request.headers.get("origin")
    if origin is not None and origin != str(request.base_url).rstrip("/"):
        return render(request, "sign_in.html", {"user": None, "error": "Sign in from this "
                      "console's own page."}, status_code=403)  # fmt: skip
    key = await state.keys.authenticate(api_key.strip())
    if key is None:
        error = "That API key is unknown, revoked or expired."
        return render(request, "sign_in.html", {"user": None, "error": error}, status_code=401)
    store = sessions_of(request)
    session_id, _ = store.open(key.key_id)
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(
        COOKIE, session_id, max_age=int(store.lifetime_seconds), path="/console",
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post("/sign-out")
async def sign_out(request: Request, user: UserDep, csrf: Text) -> Response:
    async def build() -> Response:
        _check_csrf(user, csrf)
        sessions_of(request).close(request.cookies.get(COOKIE))
        response = RedirectResponse("/console/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    return await _guarded(request, user, build)


# ---------------------------------------------------------------------------------------------
# Overview


@router.get("")
async def overview(request: Request, user: UserDep, state: StateDep) -> Response:
    async def build() -> Response:
        user.require(Scope.READ)
        recent = await decisions.list_decisions(
            ledger=state.ledger, tenant=user.tenant, where=ListFilter(), limit=10
        )
        checkpoint = await integrity.latest_checkpoint(ledger=state.ledger, tenant=user.tenant)
        summary = None
        if user.can(Scope.AUDIT):
            now = datetime.now(UTC)
            summary = await compliance.build_report(
                ledger=state.ledger, keyring=state.keyring, tenant=user.tenant,
                period_from=now - timedelta(days=30), period_to=now + timedelta(seconds=1),
                agent=None, retention_days=state.settings.retention_days,
            )  # fmt: skip
        heads = []
        for count in summary.by_agent[:10] if summary else []:
            newest = await decisions.list_decisions(
                ledger=state.ledger, tenant=user.tenant, where=ListFilter(agent=count.label),
                limit=1,
            )  # fmt: skip
            heads.extend(newest["data"])
        holds = None
        if user.can(Scope.ERASE):
            holds = await erasure.legal_holds(ledger=state.ledger, tenant=user.tenant)
        context = {
            "user": user,
            "heads": heads,
            "holds": holds,
            "recent": recent["data"],
            "checkpoint": checkpoint,
            "summary": summary,
            "last_verification": _last_verifications(request).get(user.tenant),
        }
        return render(request, "overview.html", context)

    return await _guarded(request, user, build)


# ---------------------------------------------------------------------------------------------
# Decisions


def _filters(**given: str | None) -> dict[str, str]:
    return {name: value.strip() for name, value in given.items() if value and value.strip()}


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Unprocessable(f"{name} is not a date and time (like 2026-12-01T09:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _decision_page(
    request: Request, user: ConsoleUser, state: StateDep, filters: dict[str, str]
) -> Response:
    user.require(Scope.READ)
    kind = filters.get("kind")
    if kind is not None and kind not in {k.value for k in DecisionKind}:
        raise Unprocessable("kind is not one of the decision kinds")
    since, until = _parse_time(filters.get("from"), "from"), _parse_time(filters.get("to"), "to")
    where = ListFilter(
        agent=filters.get("agent"), model=filters.get("model"), action=filters.get("action"),
        kind=kind, session=filters.get("session"), tag=filters.get("tag"),
        since=None if since is None else decisions.record_time(since),
        until=None if until is None else decisions.record_time(until),
    )  # fmt: skip
    page = await decisions.list_decisions(
        ledger=state.ledger, tenant=user.tenant, where=where,
        data_subject=filters.get("subject"), cursor=filters.get("cursor"),
        as_of=_parse_time(filters.get("as_of"), "as_of"), limit=PAGE_SIZE,
    )  # fmt: skip
    context = {
        "user": user,
        "filters": filters,
        "kinds": [k.value for k in DecisionKind],
        "rows": page["data"],
        "next_cursor": page["next_cursor"],
        "live": not filters.get("cursor") and not filters.get("as_of"),
    }
    return render(request, "decisions.html", context)


@router.get("/decisions")
async def decision_list(
    request: Request,
    user: UserDep,
    state: StateDep,
    agent: OptionalQuery = None,
    model: OptionalQuery = None,
    action: OptionalQuery = None,
    kind: OptionalQuery = None,
    session: OptionalQuery = None,
    tag: OptionalQuery = None,
    since: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
    cursor: OptionalQuery = None,
) -> Response:
    """Filters that name nothing personal may travel in the URL (links, bookmarks)."""
    filters = _filters(
        agent=agent, model=model, action=action, kind=kind, session=session, tag=tag,
        cursor=cursor, as_of=as_of, **{"from": since, "to": until},
    )  # fmt: skip
    return await _guarded(request, user, lambda: _decision_page(request, user, state, filters))


@router.post("/decisions")
async def decision_search(request: Request, user: UserDep, state: StateDep) -> Response:
    """The search form, data subject included: POSTed so that no subject id enters a URL."""
    form = await request.form()
    names = ("agent", "model", "action", "kind", "session", "subject", "tag", "from", "to",
             "as_of", "cursor")  # fmt: skip
    given = {name: form.get(name) for name in names}
    filters = _filters(**{k: v[:200] for k, v in given.items() if isinstance(v, str)})

    async def build() -> Response:
        _check_csrf(user, str(form.get("csrf", "")))
        return await _decision_page(request, user, state, filters)

    return await _guarded(request, user, build)


@router.get("/decisions/stream")
async def decision_stream(user: UserDep, state: StateDep) -> Response:
    """Live updates for the decisions page (the API's stream, with the session's key)."""
    user.require(Scope.READ)
    events = decisions.follow_decisions(
        ledger=state.ledger, tenant=user.tenant, after=None, agent=None, kind=None
    )
    return EventSourceResponse(events, ping=15)


@router.get("/decisions/{decision_id}")
async def decision_detail(
    request: Request, decision_id: str, user: UserDep, state: StateDep
) -> Response:
    async def build() -> Response:
        user.require(Scope.READ)
        found = await decisions.decision_provenance(
            ledger=state.ledger, tenant=user.tenant, decision_id=decision_id,
            with_personal=False,
        )  # fmt: skip
        record = found["decision"]
        neighbours = await _chain_neighbours(state, user, record)
        proof_input = {
            "record": record,
            "proof": found["inclusion_proof"],
            "trust_root": state.keyring.trust.to_json(),
        }
        context = {
            "user": user,
            "found": found,
            "record": record,
            "record_json": json.dumps(record, indent=2, ensure_ascii=False),
            "neighbours": neighbours,
            "proof_input": proof_input,
        }
        return render(request, "decision.html", context)

    return await _guarded(request, user, build)


async def _chain_neighbours(
    state: StateDep, user: ConsoleUser, record: dict[str, Any]
) -> dict[str, Any]:
    """The decisions just before and after this one in its agent's chain, looked for among
    the chain's decisions recorded at most a page away (a batch shares one time)."""
    chain, at, sequence = record["chain"], record["recorded_at"], record["sequence"]
    found: dict[int, dict[str, Any]] = {}
    for where in (ListFilter(agent=chain, until=at), ListFilter(agent=chain, since=at)):
        page = await decisions.list_decisions(
            ledger=state.ledger, tenant=user.tenant, where=where, limit=50
        )
        found |= {row["record"]["sequence"]: row for row in page["data"]}
    return {"previous": found.get(sequence - 1), "next": found.get(sequence + 1)}


# ---------------------------------------------------------------------------------------------
# Integrity


def _last_verifications(request: Request) -> dict[str, dict[str, Any]]:
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
        "verification": _last_verifications(request).get(user.tenant),
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

    return await _guarded(request, user, build)


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
        _check_csrf(user, csrf)
        user.require(Scope.AUDIT)
        runs = _last_verifications(request)
        if not (runs.get(user.tenant) or {}).get("running"):
            size = (await integrity.latest_checkpoint(ledger=state.ledger, tenant=user.tenant)).size
            run: dict[str, Any] = {"running": True, "checked": 0, "total": size}
            runs[user.tenant] = run
            task = asyncio.create_task(_verify(state, user.tenant, run))
            _RUNNING.add(task)  # keep a reference until it is done
            task.add_done_callback(_RUNNING.discard)
        return RedirectResponse("/console/integrity", status_code=303)

    return await _guarded(request, user, build)


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
    run = _last_verifications(request).get(user.tenant) or {}
    return {"running": bool(run.get("running")), "checked": run.get("checked", 0),
            "total": run.get("total", 0)}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Compliance


def _period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    period_to = _parse_time(until, "to") or datetime.now(UTC) + timedelta(seconds=1)
    period_from = _parse_time(since, "from") or period_to - timedelta(days=30)
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
            "query": _filters(agent=agent, **{"from": since, "to": until}),
        }
        return render(request, "compliance.html", context)

    return await _guarded(request, user, build)


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

    return await _guarded(request, user, build)
