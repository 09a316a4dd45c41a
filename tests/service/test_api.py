"""The HTTP API in process (ASGI); the end-to-end suite runs a real server."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from decisiontrail.apikeys import Scope
from decisiontrail.app import create_app
from decisiontrail.canonical import canonical_json
from decisiontrail.config import Settings
from decisiontrail.records import leaf_data
from decisiontrail.signing import REPORT_DOMAIN
from decisiontrail.state import ServiceState
from ledgerstore import merkle

DECISION: dict[str, Any] = {
    "agent": "support-bot",
    "action": "refund",
    "kind": "llm_call",
    "model": {"provider": "openai", "name": "gpt-4o", "parameters": {"temperature": 0.2}},
    "input": {"message": "Refund order 42 for Alice"},
    "output": "approved",
    "confidence": 0.93,
    "data_subjects": ["customer-17"],
    "personal": ["input"],
}


class Api:
    def __init__(self, client: httpx.AsyncClient, state: ServiceState) -> None:
        self.client = client
        self.state = state

    async def key(self, tenant: str, *scopes: Scope, **options: Any) -> dict[str, str]:
        text, _ = await self.state.keys.create(tenant=tenant, scopes=frozenset(scopes), **options)
        return {"Authorization": f"Bearer {text}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path / "data", max_body_bytes=64_000)
    state = await ServiceState.open(settings)
    app = create_app(settings, state=state)
    app.state.service = state
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dt.test") as client:
        yield Api(client, state)
    await state.close()


async def test_record_read_and_prove_a_decision(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    reader = await api.key("acme", Scope.READ)
    response = await api.client.post("/v1/decisions", json=DECISION, headers=writer)
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["chain"] == "support-bot" and receipt["sequence"] == 0
    assert set(receipt) >= {"id", "hash", "prev_hash", "signature", "key_id", "recorded_at"}
    got = await api.client.get(f"/v1/decisions/{receipt['id']}", headers=reader)
    record = got.json()["record"]
    assert record["hash"] == receipt["hash"]
    assert "Alice" not in got.text and "customer-17" not in got.text
    proof = (await api.client.get(f"/v1/decisions/{receipt['id']}/proof", headers=reader)).json()
    merkle.verify_inclusion(
        proof["log_index"], proof["tree_size"], merkle.leaf_hash(leaf_data(record)),
        [base64.b64decode(h) for h in proof["proof"]], base64.b64decode(proof["root"]),
    )  # fmt: skip


async def test_personal_values_only_for_keys_that_may_read_them(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    receipt = (await api.client.post("/v1/decisions", json=DECISION, headers=writer)).json()
    plain = await api.key("acme", Scope.READ)
    personal = await api.key("acme", Scope.READ, Scope.READ_PERSONAL)
    url = f"/v1/decisions/{receipt['id']}?personal=true"
    assert "Alice" not in (await api.client.get(url, headers=plain)).text
    shown = (await api.client.get(url, headers=personal)).json()["record"]
    assert shown["decision"]["input"] == DECISION["input"]
    assert shown["decision"]["data_subjects"] == ["customer-17"]


async def test_batches_and_idempotency(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    batch = [{**DECISION, "action": f"a{i}"} for i in range(5)]
    headers = {**writer, "Idempotency-Key": "batch-1"}
    first = await api.client.post("/v1/decisions/batch", json=batch, headers=headers)
    again = await api.client.post("/v1/decisions/batch", json=batch, headers=headers)
    assert first.status_code == again.status_code == 201
    assert [d["id"] for d in first.json()["data"]] == [d["id"] for d in again.json()["data"]]
    assert [d["sequence"] for d in first.json()["data"]] == [0, 1, 2, 3, 4]


async def test_verification_and_checkpoints(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    auditor = await api.key("acme", Scope.AUDIT, Scope.READ)
    for i in range(3):
        await api.client.post("/v1/decisions", json={**DECISION, "action": f"a{i}"}, headers=writer)
    checkpoint = (await api.client.get("/v1/checkpoints/latest", headers=auditor)).json()
    assert checkpoint["size"] == 3
    assert checkpoint["note"].startswith("decisiontrail.local/acme\n3\n")
    # A GET writes nothing (issue 14): only the issuer stores checkpoints.
    assert (await api.client.get("/v1/checkpoints/3", headers=auditor)).status_code == 404
    issued = await api.state.ledger.tree.issue_checkpoint("acme")
    by_size = await api.client.get("/v1/checkpoints/3", headers=auditor)
    assert by_size.json()["note"] == issued.note
    await api.client.post("/v1/decisions", json=DECISION, headers=writer)
    consistency = await api.client.get("/v1/proofs/consistency?from=3", headers=auditor)
    body = consistency.json()
    merkle.verify_consistency(
        3, body["to"], base64.b64decode(body["from_root"]), base64.b64decode(body["to_root"]),
        [base64.b64decode(h) for h in body["proof"]],
    )  # fmt: skip
    report = await api.client.post(
        "/v1/verify", json={"trusted_checkpoint": checkpoint["note"]}, headers=auditor
    )
    assert report.json()["ok"] is True and report.json()["records_checked"] == 4


async def test_access_control_and_tenant_isolation(api: Api) -> None:
    acme = await api.key("acme", Scope.INGEST, Scope.READ)
    other = await api.key("globex", Scope.READ, Scope.AUDIT)
    receipt = (await api.client.post("/v1/decisions", json=DECISION, headers=acme)).json()
    assert (
        await api.client.get(f"/v1/decisions/{receipt['id']}", headers=other)
    ).status_code == 404
    assert (await api.client.post("/v1/decisions", json=DECISION)).status_code == 401
    bad = {"Authorization": "Bearer dtk_0123456789abcdef_nope"}
    assert (await api.client.post("/v1/decisions", json=DECISION, headers=bad)).status_code == 401
    response = await api.client.post("/v1/decisions", json=DECISION, headers=other)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "forbidden"


async def test_bad_input_is_a_clear_4xx(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    cases = [
        (b"{not json", 422),
        (b'{"agent": "a"}', 422),
        (b'{"agent": "a", "action": "b", "confidence": 7}', 422),
        (b'{"agent": "a", "action": "b", "personal": ["password"]}', 422),
        (b'{"agent": "a", "action": "b", "input": 9007199254740993}', 422),
        (b'{"agent": "a", "action": "' + b"x" * 70_000 + b'"}', 413),
    ]
    for body, status in cases:
        response = await api.client.post(
            "/v1/decisions", content=body, headers={**writer, "content-type": "application/json"}
        )
        assert response.status_code == status, (body[:40], response.text)
        assert response.headers["content-type"] == "application/problem+json"
    empty = await api.client.post("/v1/decisions/batch", json=[], headers=writer)
    assert empty.status_code == 422

    async def chunked(size: int) -> AsyncIterator[bytes]:  # no Content-Length: streamed
        body = b'{"agent": "a", "action": "b", "output": "' + b"x" * size + b'"}'
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    headers = {**writer, "content-type": "application/json"}
    streamed = await api.client.post("/v1/decisions", content=chunked(70_000), headers=headers)
    assert streamed.status_code == 413 and streamed.json()["code"] == "payload_too_large"
    small = await api.client.post("/v1/decisions", content=chunked(20_000), headers=headers)
    assert small.status_code == 201, small.text


async def test_rate_limits_answer_429_with_retry_after(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST, rate_limit_per_second=1)
    statuses = [
        (await api.client.post("/v1/decisions", json=DECISION, headers=writer)).status_code
        for _ in range(3)
    ]
    assert statuses[0] == 201 and 429 in statuses
    limited = await api.client.post("/v1/decisions", json=DECISION, headers=writer)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


async def test_health_and_metrics(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["genesisdb"] == "ok"
    writer = await api.key("acme", Scope.INGEST)
    await api.client.post("/v1/decisions", json=DECISION, headers=writer)
    scraper = await api.key("acme", Scope.METRICS)
    text = (await api.client.get("/metrics", headers=scraper)).text
    assert 'decisiontrail_decisions_ingested_total{agent="support-bot",kind="llm_call"} 1.0' in text
    assert "sapixdb" in ready.json()["checks"] and ready.json()["checks"]["sapixdb"] == "ok"
    await api.state.ledger.tree.issue_checkpoint("acme")  # as the periodic issuer does
    text = (await api.client.get("/metrics", headers=scraper)).text
    assert "decisiontrail_checkpoint_age_seconds " in text
    assert "acme" not in text
    for store, operation in [("sapixdb", "ingest"), ("sapixdb", "add_edges"),
                             ("genesisdb", "commit")]:  # fmt: skip
        assert f'store_seconds_count{{operation="{operation}",store="{store}"}} 1.0' in text
    assert "Alice" not in text


async def test_erasure_removes_personal_values_everywhere_and_keeps_proofs(
    api: Api, tmp_path: Path
) -> None:
    writer = await api.key("acme", Scope.INGEST)
    reader = await api.key("acme", Scope.READ, Scope.READ_PERSONAL, Scope.AUDIT)
    eraser = await api.key("acme", Scope.ERASE)
    secret = "Zelda Quux-" + tmp_path.name
    decision = {**DECISION, "input": {"name": secret}, "data_subjects": ["subject-99"]}
    receipt = (await api.client.post("/v1/decisions", json=decision, headers=writer)).json()
    other = (await api.client.post("/v1/decisions", json=DECISION, headers=writer)).json()
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert any(secret.encode() in p.read_bytes() for p in files), "the value must be findable"

    held = await api.client.put("/v1/data-subjects/subject-99/legal-hold", headers=eraser)
    assert held.status_code == 200
    refused = await api.client.delete("/v1/data-subjects/subject-99", headers=eraser)
    assert refused.status_code == 409 and refused.json()["code"] == "legal_hold"
    await api.client.delete("/v1/data-subjects/subject-99/legal-hold", headers=eraser)

    erased = await api.client.delete("/v1/data-subjects/subject-99", headers=eraser)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["decisions"] == [receipt["id"]] and body["values_erased"] >= 1
    assert body["signature"] and body["key_id"]

    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"sapixdb.db", "genesisdb.db"}
    assert not any(secret.encode() in p.read_bytes() for p in files)
    assert not any(b"subject-99" in p.read_bytes() for p in files)  # nor the person's id
    shown = await api.client.get(f"/v1/decisions/{receipt['id']}?personal=true", headers=reader)
    assert shown.json()["record"]["personal_erased"] is True
    kept = await api.client.get(f"/v1/decisions/{other['id']}?personal=true", headers=reader)
    assert kept.json()["record"]["decision"]["input"] == DECISION["input"]
    report = (await api.client.post("/v1/verify", json={}, headers=reader)).json()
    assert report["ok"] and report["records_checked"] == 3  # two decisions and the erasure
    proof = await api.client.get(f"/v1/decisions/{receipt['id']}/proof", headers=reader)
    assert proof.status_code == 200
    forbidden = await api.client.delete("/v1/data-subjects/subject-99", headers=writer)
    assert forbidden.status_code == 403


async def test_compliance_report_in_every_format_is_signed(api: Api) -> None:
    writer = await api.key("acme", Scope.INGEST)
    auditor = await api.key("acme", Scope.AUDIT)
    reviewed = {**DECISION, "oversight": {"reviewer": "r1", "verdict": "ok", "overridden": True}}
    for body in (DECISION, reviewed, {**DECISION, "agent": "triage", "confidence": 0.15}):
        await api.client.post("/v1/decisions", json=body, headers=writer)
    await api.client.get("/v1/checkpoints/latest", headers=auditor)  # a checkpoint mid-period
    await api.client.post("/v1/decisions", json={**DECISION, "tags": ["error"]}, headers=writer)
    response = await api.client.get("/v1/reports/compliance", headers=auditor)
    assert response.status_code == 200, response.text
    payload = response.json()
    report = payload["report"]
    assert report["total_decisions"] == 4 and report["reviewed"] == 1 and report["overridden"] == 1
    assert {c["label"]: c["count"] for c in report["by_agent"]} == {"support-bot": 3, "triage": 1}
    assert report["errors"] == 1 and report["verification_ok"] is True
    assert report["checkpoint_end"]["size"] == 4 and report["retention_met"] is True
    digest = bytes.fromhex(payload["signature"]["sha256"])
    assert digest == hashlib.sha256(canonical_json(report)).digest()
    signature = base64.b64decode(payload["signature"]["signature"])
    key_id = payload["signature"]["key_id"]
    trust = api.state.keyring.trust
    assert trust.verify(key_id, REPORT_DOMAIN + digest, signature, datetime.now(UTC)) is None
    html = await api.client.get("/v1/reports/compliance?format=html", headers=auditor)
    assert html.headers["content-type"].startswith("text/html") and "<svg" in html.text
    assert html.headers["X-Report-Signature"]
    csv_text = (await api.client.get("/v1/reports/compliance?format=csv", headers=auditor)).text
    assert "support-bot" in csv_text
    one_agent = await api.client.get("/v1/reports/compliance?agent=triage", headers=auditor)
    assert one_agent.json()["report"]["total_decisions"] == 1
    bad = await api.client.get("/v1/reports/compliance?from=2030-01-01T00:00:00Z", headers=auditor)
    assert bad.status_code == 422
