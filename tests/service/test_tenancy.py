"""Tenancy and access control: a key sees its own tenant's trail and nothing else.

Tenant ``acme`` attacks tenant ``acme-2`` (a name that starts with the other's, so a prefix
match on storage paths would leak). Every attempt is refused the way a missing decision is: a
404 whose body is the same as for an id that never existed, so a key cannot even learn that
another tenant's decision exists. Keys without the scope get 403, missing, unknown, revoked or
expired keys 401, and a key over its rate 429 with ``Retry-After`` — all RFC 9457 problems.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from decisiontrail.apikeys import Scope
from decisiontrail.errors import PROBLEM_TYPE
from tests.service.inprocess import DECISION, EVERY_SCOPE, Service, read_events, running

A, B = "acme", "acme-2"
SECRET = DECISION["input"]["message"]


@dataclass
class Tenants:
    service: Service
    a: dict[str, str]  # acme's key, every scope but admin
    b: dict[str, str]  # acme-2's key, every scope but admin
    a_ids: list[str]
    b_ids: list[str]


@pytest.fixture
async def tenants(service: Service) -> Tenants:
    a, b = await service.key(A), await service.key(B)
    b_ids = [(await service.record(b))["id"], (await service.record(b, agent="triage"))["id"]]
    a_ids = [(await service.record(a, agent="acme-bot"))["id"]]
    b_ids.append((await service.record(b))["id"])
    return Tenants(service, a, b, a_ids, b_ids)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"].endswith(f"/problems/{code}") and body["title"] and body["detail"]
    return body


def listed_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    items = response.json()["data"]
    return [str(item["record"]["id"] if "record" in item else item["id"]) for item in items]


def without(body: dict[str, Any], decision_id: str) -> str:
    """The body with the id it names replaced, to compare answers about different ids."""
    return json.dumps(body, sort_keys=True).replace(decision_id, "<id>")


# --- another tenant's decisions are not there -------------------------------------------------

DECISION_URLS = [
    "/v1/decisions/{id}",
    "/v1/decisions/{id}?personal=true",
    "/v1/decisions/{id}/proof",
    "/v1/decisions/{id}/provenance",
    "/v1/decisions/{id}/provenance?personal=true",
]


@pytest.mark.parametrize("url", DECISION_URLS)
async def test_another_tenants_decision_is_not_found_like_one_that_never_was(
    tenants: Tenants, url: str
) -> None:
    client = tenants.service.client
    own = await client.get(url.format(id=tenants.a_ids[0]), headers=tenants.a)
    assert own.status_code == 200, own.text
    answers = {}
    for name, decision_id in [
        ("theirs", tenants.b_ids[0]),
        ("random uuid4", str(uuid.uuid4())),
        ("made-up uuid7", tenants.b_ids[0][:-6] + "abcdef"),
        ("not a uuid", "not-a-decision"),
    ]:
        response = await client.get(url.format(id=decision_id), headers=tenants.a)
        answers[name] = without(assert_problem(response, 404, "not_found"), decision_id)
        assert SECRET not in response.text and tenants.b_ids[0] not in response.text.replace(
            decision_id, ""
        )
    assert len(set(answers.values())) == 1, answers  # existence does not leak


async def test_listing_and_filtering_show_only_the_own_tenant(tenants: Tenants) -> None:
    client = tenants.service.client
    for query in ["", "?data_subject=customer-17", "?agent=support-bot", "?agent=triage",
                  "?kind=llm_call", "?limit=500"]:  # fmt: skip
        response = await client.get(f"/v1/decisions{query}", headers=tenants.a)
        assert response.status_code == 200, (query, response.text)
        for other in tenants.b_ids:
            assert other not in response.text, query
    everything = await client.get("/v1/decisions?limit=500", headers=tenants.a)
    assert listed_ids(everything) == tenants.a_ids
    theirs = await client.get("/v1/decisions?limit=500", headers=tenants.b)
    assert sorted(listed_ids(theirs)) == sorted(tenants.b_ids)


async def test_the_stream_carries_only_the_own_tenants_decisions(tenants: Tenants) -> None:
    service = tenants.service
    later_b = await service.record(tenants.b)
    later_a = await service.record(tenants.a, agent="acme-bot")
    await service.record(tenants.b)
    events = await read_events(service.app, "/v1/decisions/stream?after=-1", tenants.a, count=2)
    assert [e["id"] for e in events] == [tenants.a_ids[0], later_a["id"]]
    assert [e["log_index"] for e in events] == [0, 1]
    assert all(e["tenant"] == A for e in events) and later_b["id"] not in json.dumps(events)


async def test_erasure_reaches_only_the_own_tenant(tenants: Tenants) -> None:
    client = tenants.service.client
    a_about_17 = (await tenants.service.record(tenants.a))["id"]
    erased = await client.delete("/v1/data-subjects/customer-17", headers=tenants.a)
    assert erased.status_code == 200, erased.text
    assert sorted(erased.json()["decisions"]) == sorted([tenants.a_ids[0], a_about_17])
    assert erased.json()["tenant"] == A
    for decision_id in tenants.b_ids:  # the same subject id in the other tenant keeps its data
        shown = await client.get(f"/v1/decisions/{decision_id}?personal=true", headers=tenants.b)
        assert shown.json()["record"]["decision"]["input"] == DECISION["input"]
    mine = await client.get(f"/v1/decisions/{a_about_17}?personal=true", headers=tenants.a)
    assert mine.json()["record"]["personal_erased"] is True

    held = await client.put("/v1/data-subjects/customer-17/legal-hold", headers=tenants.a)
    assert held.status_code == 200  # acme's hold does not bind acme-2
    theirs = await client.delete("/v1/data-subjects/customer-17", headers=tenants.b)
    assert theirs.status_code == 200, theirs.text
    assert sorted(theirs.json()["decisions"]) == sorted(tenants.b_ids)


async def test_verify_checkpoints_and_proofs_cover_only_the_own_log(tenants: Tenants) -> None:
    client = tenants.service.client
    mine = (await client.post("/v1/verify", json={}, headers=tenants.a)).json()
    theirs = (await client.post("/v1/verify", json={}, headers=tenants.b)).json()
    assert mine["ok"] and mine["records_checked"] == mine["tree_size"] == 1
    assert theirs["ok"] and theirs["records_checked"] == theirs["tree_size"] == 3
    assert mine["root"] != theirs["root"]

    their_checkpoint = (await client.get("/v1/checkpoints/latest", headers=tenants.b)).json()
    assert their_checkpoint["size"] == 3 and their_checkpoint["origin"].endswith("/" + B)
    my_checkpoint = (await client.get("/v1/checkpoints/latest", headers=tenants.a)).json()
    assert my_checkpoint["size"] == 1 and my_checkpoint["origin"].endswith("/" + A)
    assert_problem(await client.get("/v1/checkpoints/3", headers=tenants.a), 404, "not_found")
    for query in ["from=2", "from=3&to=2", "from=1&to=3"]:  # sizes only acme-2's log has
        consistency = await client.get(f"/v1/proofs/consistency?{query}", headers=tenants.a)
        assert_problem(consistency, 422, "validation_error")
    # Their signed checkpoint is no trusted checkpoint for my log: its origin names them.
    pinned = await client.post(
        "/v1/verify", json={"trusted_checkpoint": their_checkpoint["note"]}, headers=tenants.a
    )
    assert "acme-2" in assert_problem(pinned, 422, "validation_error")["detail"]


async def test_reports_cover_only_the_own_tenant(tenants: Tenants) -> None:
    response = await tenants.service.client.get("/v1/reports/compliance", headers=tenants.a)
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert report["total_decisions"] == 1
    assert {c["label"] for c in report["by_agent"]} == {"acme-bot"}
    assert not any(other in response.text for other in tenants.b_ids)


async def test_the_same_idempotency_key_in_two_tenants_is_two_decisions(service: Service) -> None:
    a, b = await service.key(A, Scope.INGEST), await service.key(B, Scope.INGEST)
    url, key = "/v1/decisions", {"Idempotency-Key": "order-42"}
    theirs = await service.client.post(url, json=DECISION, headers={**b, **key})
    mine = await service.client.post(url, json=DECISION, headers={**a, **key})
    assert theirs.status_code == mine.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"] and mine.json()["tenant"] == A
    again = await service.client.post(url, json=DECISION, headers={**a, **key})
    assert again.json()["id"] == mine.json()["id"]


async def test_names_cannot_climb_into_another_tenants_storage(tenants: Tenants) -> None:
    client = tenants.service.client
    for agent in ["../../acme-2/agents/support-bot", "x/../../../tenants/acme-2", "%2F..%2Facme-2"]:
        await tenants.service.record(tenants.a, agent=agent, run_id="../acme-2", session_id="/")
    theirs = (await client.post("/v1/verify", json={}, headers=tenants.b)).json()
    assert theirs["ok"] and theirs["records_checked"] == 3, theirs
    mine = (await client.post("/v1/verify", json={}, headers=tenants.a)).json()
    assert mine["ok"] and mine["records_checked"] == 4, mine


# --- scopes and keys ---------------------------------------------------------------------------

ROUTES: list[tuple[str, str, Scope, Any]] = [
    ("POST", "/v1/decisions", Scope.INGEST, DECISION),
    ("POST", "/v1/decisions/batch", Scope.INGEST, [DECISION]),
    ("GET", "/v1/decisions", Scope.READ, None),
    ("GET", "/v1/decisions/{id}", Scope.READ, None),
    ("GET", "/v1/decisions/{id}/proof", Scope.READ, None),
    ("GET", "/v1/decisions/{id}/provenance", Scope.READ, None),
    ("GET", "/v1/decisions/stream", Scope.READ, None),
    ("GET", "/v1/checkpoints/latest", Scope.READ, None),
    ("GET", "/v1/checkpoints/1", Scope.READ, None),
    ("GET", "/v1/proofs/consistency?from=1", Scope.READ, None),
    ("POST", "/v1/verify", Scope.AUDIT, {}),
    ("GET", "/v1/reports/compliance", Scope.AUDIT, None),
    ("DELETE", "/v1/data-subjects/customer-17", Scope.ERASE, None),
    ("PUT", "/v1/data-subjects/customer-17/legal-hold", Scope.ERASE, None),
    ("DELETE", "/v1/data-subjects/customer-17/legal-hold", Scope.ERASE, None),
]


async def call(
    service: Service, route: tuple[str, str, Scope, Any], headers: dict[str, str], decision: str
) -> httpx.Response:
    method, url, _, body = route
    request = service.client.build_request(
        method, url.format(id=decision), json=body, headers=headers
    )
    # A refused stream answers at once; one that started would never end: fail, don't hang.
    return await asyncio.wait_for(service.client.send(request), timeout=60)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
async def test_every_scope_but_the_needed_one_is_forbidden(
    service: Service, route: tuple[str, str, Scope, Any]
) -> None:
    decision = (await service.record(await service.key(A, Scope.INGEST)))["id"]
    await service.state.ledger.tree.issue_checkpoint(A)  # as the periodic issuer does
    needed = route[2]
    others = await service.key(A, *(EVERY_SCOPE - {needed}))
    body = assert_problem(await call(service, route, others, decision), 403, "forbidden")
    assert needed.value in body["detail"]
    if route[1] != "/v1/decisions/stream":
        allowed = await call(service, route, await service.key(A, needed), decision)
        assert allowed.status_code in (200, 201), allowed.text
        # Something for the admin to erase too (erasing nothing is a 404, not an erasure).
        await service.record(await service.key(A, Scope.INGEST))
        admin = await call(service, route, await service.key(A, Scope.ADMIN), decision)
        assert admin.status_code in (200, 201), admin.text


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
async def test_without_a_usable_key_every_route_is_unauthorized(
    service: Service, route: tuple[str, str, Scope, Any]
) -> None:
    valid = await service.key(A)
    text = valid["Authorization"].removeprefix("Bearer ")
    key_id = text.split("_")[1]
    revoked = await service.key(A)
    await service.state.keys.revoke(revoked["Authorization"].split("_")[1])
    expired = await service.key(A, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    decision = (await service.record(valid))["id"]
    details = {}
    for name, headers in [
        ("none", {}),
        ("empty bearer", {"Authorization": "Bearer "}),
        ("other scheme", {"Authorization": f"Basic {text}"}),
        ("not a key", {"Authorization": "Bearer hunter2"}),
        ("unknown key id", {"Authorization": f"Bearer dtk_{'0' * 16}_{text.split('_')[2]}"}),
        ("wrong secret", {"Authorization": f"Bearer dtk_{key_id}_{'a' * 52}"}),
        ("secret too long", {"Authorization": f"Bearer dtk_{key_id}_{'a' * 129}"}),
        ("revoked", revoked),
        ("expired", expired),
    ]:
        response = await call(service, route, headers, decision)
        details[name] = assert_problem(response, 401, "unauthorized")["detail"]
        assert text.split("_")[2] not in response.text, name
    # Whatever is wrong with a presented key, the answer is the same: no key enumeration.
    absent = ("none", "empty bearer", "other scheme")
    presented = {details[name] for name in details if name not in absent}
    assert len(presented) == 1, details


async def test_personal_values_need_the_read_personal_scope(tenants: Tenants) -> None:
    service, decision = tenants.service, tenants.a_ids[0]
    reader = await service.key(A, Scope.READ)
    for url in [f"/v1/decisions/{decision}?personal=true",
                f"/v1/decisions/{decision}/provenance?personal=true"]:  # fmt: skip
        response = await service.client.get(url, headers=reader)  # refused, not half-answered
        assert response.status_code == 403 and SECRET not in response.text
        assert "customer-17" not in response.text
    allowed = await service.key(A, Scope.READ, Scope.READ_PERSONAL)
    shown = await service.client.get(f"/v1/decisions/{decision}?personal=true", headers=allowed)
    assert shown.json()["record"]["decision"]["input"] == DECISION["input"]


async def test_authentication_comes_before_validation(service: Service) -> None:
    """An anonymous caller learns nothing about what a valid request would look like.

    (Not covered: a body that is not JSON at all gets its 422 before the key is checked,
    because FastAPI parses the body before it resolves dependencies.)
    """
    for body in [b'{"agent": 1}', b"[]", b'{"agent": "a", "action": "b", "x": 1}']:
        response = await service.client.post(
            "/v1/decisions", content=body, headers={"content-type": "application/json"}
        )
        assert_problem(response, 401, "unauthorized")


# --- rate limits -------------------------------------------------------------------------------


async def test_the_configured_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    # One request, then the bucket refills at 0.001/s: the next ones are refused for ~1000 s,
    # whatever the speed of the machine.
    async with running(tmp_path / "data", rate_limit_per_second=0.001) as service:
        first, second = await service.key(A), await service.key(A)
        assert (await service.client.get("/v1/decisions", headers=first)).status_code == 200
        for url in ["/v1/decisions", "/v1/checkpoints/latest"]:
            limited = await service.client.get(url, headers=first)
            body = assert_problem(limited, 429, "rate_limited")
            assert int(limited.headers["Retry-After"]) >= 900 and "0.001" in body["detail"]
        refused = await service.client.post("/v1/decisions", json=DECISION, headers=first)
        assert_problem(refused, 429, "rate_limited")
        # per key: another key of the same tenant still gets its own budget
        assert (await service.client.get("/v1/decisions", headers=second)).status_code == 200
        # and a key's own limit overrides the service's
        fast = await service.key(A, rate_limit_per_second=1000)
        statuses = {(await service.client.get("/healthz", headers=fast)).status_code}
        for _ in range(5):
            statuses.add((await service.client.get("/v1/decisions", headers=fast)).status_code)
        assert statuses == {200}
        third = await service.key(A)
        listed = await service.client.get("/v1/decisions?limit=500", headers=third)
        assert listed_ids(listed) == []  # the refused POST wrote nothing
