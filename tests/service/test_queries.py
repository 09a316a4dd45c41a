"""Provenance queries over HTTP (in process): listing with filters and cursors, time travel,
the provenance of a decision, and the two stores checked against each other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from decisiontrail.apikeys import Scope
from tests.service.test_api import DECISION, Api, api

__all__ = ["api"]


def decision(**changes: Any) -> dict[str, Any]:
    return {**DECISION, **changes}


async def record(api: Api, headers: dict[str, str], body: list[dict[str, Any]]) -> list[str]:
    response = await api.client.post("/v1/decisions/batch", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return [r["id"] for r in response.json()["data"]]


async def test_list_filters_and_pages_newest_first(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    reader = await api.key("acme", Scope.READ)
    ids = await record(
        api,
        writer,
        [
            decision(agent="a", action=f"act{i % 2}", tags=["t1"] if i % 3 == 0 else ["t2"],
                     session_id="s1" if i < 4 else "s2", data_subjects=[f"person-{i % 2}"])
            for i in range(10)
        ],
    )  # fmt: skip
    ids += await record(api, writer, [decision(agent="b", kind="tool_call", model=None)])
    everything = await api.client.get("/v1/decisions", headers=reader)
    assert [d["record"]["id"] for d in everything.json()["data"]] == ids[::-1]
    assert everything.json()["next_cursor"] is None

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"agent": "a", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/v1/decisions", params=params, headers=reader)).json()
        pages.append([d["record"]["id"] for d in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [i for page in pages for i in page] == ids[:10][::-1]  # no gap, no duplicate

    async def ids_for(**params: Any) -> list[str]:
        response = await api.client.get("/v1/decisions", params=params, headers=reader)
        assert response.status_code == 200, response.text
        return [d["record"]["id"] for d in response.json()["data"]]

    assert await ids_for(action="act1") == [ids[i] for i in (9, 7, 5, 3, 1)]
    assert await ids_for(tag="t1") == [ids[i] for i in (9, 6, 3, 0)]
    assert await ids_for(session="s1", action="act0") == [ids[2], ids[0]]
    assert await ids_for(kind="tool_call") == [ids[10]]
    assert await ids_for(model="gpt-4o", agent="b") == []
    assert await ids_for(data_subject="person-1") == [ids[i] for i in (9, 7, 5, 3, 1)]
    assert await ids_for(data_subject="nobody") == []
    # Another tenant sees none of it.
    other = await api.key("globex", Scope.READ)
    response = await api.client.get("/v1/decisions", headers=other)
    assert response.json()["data"] == []
    # Bad cursors and filters are 422 problems.
    bad = await api.client.get("/v1/decisions", params={"cursor": "bm9wZQ"}, headers=reader)
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    bad = await api.client.get("/v1/decisions", params={"kind": "nonsense"}, headers=reader)
    assert bad.status_code == 422


async def test_erased_subjects_are_no_longer_a_filter(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    reader = await api.key("acme", Scope.READ)
    eraser = await api.key("acme", Scope.ERASE)
    await record(api, writer, [decision(data_subjects=["person-9"])])
    found = await api.client.get("/v1/decisions?data_subject=person-9", headers=reader)
    assert len(found.json()["data"]) == 1
    erased = await api.client.delete("/v1/data-subjects/person-9", headers=eraser)
    assert erased.status_code == 200, erased.text
    found = await api.client.get("/v1/decisions?data_subject=person-9", headers=reader)
    assert found.json()["data"] == []


async def test_time_travel_on_list_and_get(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    reader = await api.key("acme", Scope.READ)
    (early,) = await record(api, writer, [decision(action="early")])
    await asyncio.sleep(0.01)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.01)
    (late,) = await record(api, writer, [decision(action="late")])
    as_of = {"as_of": moment.isoformat()}
    listed = await api.client.get("/v1/decisions", params=as_of, headers=reader)
    assert [d["record"]["id"] for d in listed.json()["data"]] == [early]
    assert (await api.client.get(f"/v1/decisions/{early}", params=as_of, headers=reader)).is_success
    missing = await api.client.get(f"/v1/decisions/{late}", params=as_of, headers=reader)
    assert missing.status_code == 404
    now = await api.client.get(f"/v1/decisions/{late}", headers=reader)
    assert now.status_code == 200


async def test_provenance_of_a_decision(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    reader = await api.key("acme", Scope.READ)
    personal = await api.key("acme", Scope.READ, Scope.READ_PERSONAL)
    root, child, grandchild, review, elsewhere = await record(
        api,
        writer,
        [
            decision(action="plan", run_id="r-root", session_id="s"),
            decision(action="search", kind="tool_call", run_id="r-child",
                     parent_run_id="r-root", session_id="s"),
            decision(action="answer", run_id="r-grand", parent_run_id="r-child", session_id="s"),
            decision(action="approve", kind="human_review", run_id="r-review",
                     parent_run_id="r-child", session_id="s",
                     oversight={"reviewer": "rev-1", "verdict": "approved", "overridden": False}),
            decision(action="other", run_id="r-other", session_id="s2"),
        ],
    )  # fmt: skip
    response = await api.client.get(f"/v1/decisions/{child}/provenance", headers=reader)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"]["id"] == child
    assert body["agent"]["id"] == DECISION["agent"]
    assert body["model"]["parameters"] == {"temperature": 0.2}
    assert body["run"]["run_id"] == "r-child" and body["run"]["parent_run_id"] == "r-root"
    assert [a["run_id"] for a in body["run"]["ancestors"]] == ["r-root"]
    assert [d["id"] for d in body["run"]["ancestors"][0]["decisions"]] == [root]
    assert [d["id"] for d in body["run"]["descendants"]] == [grandchild, review]
    assert {d["id"] for d in body["session"]["decisions"]} == {root, child, grandchild, review}
    assert elsewhere not in response.text
    assert [r["id"] for r in body["oversight"]["reviews"]] == [review]
    assert body["oversight"]["reviews"][0]["oversight"]["verdict"] == "approved"
    assert body["data_subjects"] == {"count": 1, "ids": None}
    assert "customer-17" not in response.text
    proof = body["inclusion_proof"]
    assert proof["log_index"] == body["log_index"] and proof["tree_size"] >= 5
    assert proof["checkpoint"].startswith("decisiontrail.local/acme\n")
    # With read-personal, the subject ids come back in clear.
    clear = await api.client.get(
        f"/v1/decisions/{child}/provenance?personal=true", headers=personal
    )
    assert clear.json()["data_subjects"] == {"count": 1, "ids": ["customer-17"]}
    # Another tenant's key: 404, like an id that does not exist.
    other = await api.key("globex", Scope.READ)
    hidden = await api.client.get(f"/v1/decisions/{child}/provenance", headers=other)
    assert hidden.status_code == 404


async def test_verify_compares_the_two_stores(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    auditor = await api.key("acme", Scope.AUDIT)
    ids = await record(api, writer, [decision(action=f"a{i}") for i in range(3)])
    report = (await api.client.post("/v1/verify", json={}, headers=auditor)).json()
    assert report["ok"] and report["stores"]["decisions_compared"] == 3
    # Someone deletes a decision's SapixDB record (a tombstone through the SDK).
    found = await api.state.ledger.reads.find("acme", ids[1])
    assert found is not None and found.sapix_id is not None
    await api.state.sapix.collection("ai_decisions").delete(found.sapix_id)
    report = (await api.client.post("/v1/verify", json={}, headers=auditor)).json()
    assert not report["ok"]
    assert report["first_problem"]["record_id"] == ids[1]
    assert report["first_problem"]["reason"] == "missing_in_sapixdb"
    assert report["stores"]["mismatches"] == 1
