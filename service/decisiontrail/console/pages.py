"""The auditor console's reading pages: sign-in, overview, decisions and a decision. They are
server-rendered HTML over the same keyword-only service functions the API routes call, with
the signed-in key's tenant and scopes.

Nothing personal goes into a URL: the data-subject filter is only accepted in a POSTed form,
and personal values are never shown (the console reads as a ``read`` key does without
``?personal=true``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from sse_starlette.sse import EventSourceResponse

from decisiontrail import compliance, decisions, erasure, integrity
from decisiontrail.apikeys import Scope
from decisiontrail.console.audit_pages import last_verifications
from decisiontrail.console.auth import ConsoleUser, UserDep, sessions_of
from decisiontrail.console.inputs import (
    OptionalQuery,
    Text,
    check_csrf,
    filled_in,
    guarded,
    parse_time,
)
from decisiontrail.console.rendering import render
from decisiontrail.console.sessions import COOKIE
from decisiontrail.deps import StateDep
from decisiontrail.errors import Unprocessable
from decisiontrail.models import DecisionKind
from decisiontrail.provenance import ListFilter

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 25


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
        check_csrf(user, csrf)
        sessions_of(request).close(request.cookies.get(COOKIE))
        response = RedirectResponse("/console/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    return await guarded(request, user, build)


# ---------------------------------------------------------------------------------------------
# Overview


@router.get("")
async def overview(request: Request, user: UserDep, state: StateDep) -> Response:
    async def build() -> Response:
        user.require(Scope.READ)
        recent = await decisions.list_decisions(
            ledger=state.ledger, tenant=user.tenant, where=ListFilter(), limit=10
        )
        checkpoint = await integrity.current_checkpoint(ledger=state.ledger, tenant=user.tenant)
        summary = None
        if user.can(Scope.AUDIT):
            now = datetime.now(UTC)
            summary = await compliance.build_report(
                ledger=state.ledger, keyring=state.keyring, tenant=user.tenant,
                period_from=now - timedelta(days=30), period_to=now + timedelta(seconds=1),
                agent=None, retention_days=state.settings.retention_days,
            )  # fmt: skip
        per_day = await compliance.decisions_per_day(
            ledger=state.ledger, tenant=user.tenant, days=14
        )
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
            "per_day": per_day,
            "busiest_day": max([day.count for day in per_day] + [1]),
            "holds": holds,
            "recent": recent["data"],
            "checkpoint": checkpoint,
            "summary": summary,
            "last_verification": last_verifications(request).get(user.tenant),
        }
        return render(request, "overview.html", context)

    return await guarded(request, user, build)


# ---------------------------------------------------------------------------------------------
# Decisions


async def _decision_page(
    request: Request, user: ConsoleUser, state: StateDep, filters: dict[str, str]
) -> Response:
    user.require(Scope.READ)
    kind = filters.get("kind")
    if kind is not None and kind not in {k.value for k in DecisionKind}:
        raise Unprocessable("kind is not one of the decision kinds")
    since, until = parse_time(filters.get("from"), "from"), parse_time(filters.get("to"), "to")
    where = ListFilter(
        agent=filters.get("agent"), model=filters.get("model"), action=filters.get("action"),
        kind=kind, session=filters.get("session"), tag=filters.get("tag"),
        since=None if since is None else decisions.record_time(since),
        until=None if until is None else decisions.record_time(until),
    )  # fmt: skip
    page = await decisions.list_decisions(
        ledger=state.ledger, tenant=user.tenant, where=where,
        data_subject=filters.get("subject"), cursor=filters.get("cursor"),
        as_of=parse_time(filters.get("as_of"), "as_of"), limit=PAGE_SIZE,
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
    filters = filled_in(
        agent=agent, model=model, action=action, kind=kind, session=session, tag=tag,
        cursor=cursor, as_of=as_of, **{"from": since, "to": until},
    )  # fmt: skip
    return await guarded(request, user, lambda: _decision_page(request, user, state, filters))


@router.post("/decisions")
async def decision_search(request: Request, user: UserDep, state: StateDep) -> Response:
    """The search form, data subject included: POSTed so that no subject id enters a URL."""
    form = await request.form()
    names = ("agent", "model", "action", "kind", "session", "subject", "tag", "from", "to",
             "as_of", "cursor")  # fmt: skip
    given = {name: form.get(name) for name in names}
    filters = filled_in(**{k: v[:200] for k, v in given.items() if isinstance(v, str)})

    async def build() -> Response:
        check_csrf(user, str(form.get("csrf", "")))
        return await _decision_page(request, user, state, filters)

    return await guarded(request, user, build)


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

    return await guarded(request, user, build)


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
