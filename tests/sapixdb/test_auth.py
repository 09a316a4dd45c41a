"""API keys, scopes and rate limits; open mode without a root key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sapixdb import SapixClient, SapixError, SapixRateLimitError
from sapixdb.server import ServerSettings, create_app
from sapixdb.server.auth import required_scope, scope_allows
from sapixdb.transports.http import HTTPTransport

ROOT = "root-secret-for-tests"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = ServerSettings(storage_url=f"sqlite:///{tmp_path}/a.db", root_key=ROOT)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_key(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/admin/api-keys", json=fields, headers=bearer(ROOT))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def write(client: TestClient, key: str | None, agent: str = "orders") -> Any:
    headers = bearer(key) if key else {}
    return client.post(f"/v1/agents/{agent}/records/json", json={"data": {"x": 1}}, headers=headers)


def test_open_mode_needs_no_key(tmp_path: Path) -> None:
    settings = ServerSettings(storage_url=f"sqlite:///{tmp_path}/o.db")
    with TestClient(create_app(settings)) as client:
        assert write(client, None).status_code == 200
        assert client.get("/v1/admin/api-keys").status_code == 200


def test_missing_or_unknown_key_is_401(client: TestClient) -> None:
    for response in (write(client, None), write(client, "sapix_sk_" + "0" * 64)):
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHORIZED"
    assert client.get("/v1/health").status_code == 200  # health stays open


def test_root_key_is_allowed_everything(client: TestClient) -> None:
    assert write(client, ROOT).status_code == 200
    assert client.get("/v1/admin/api-keys", headers=bearer(ROOT)).status_code == 200


def test_key_is_shown_once_and_stored_hashed(client: TestClient) -> None:
    created = make_key(client, label="ci", scopes=["write:*"])
    assert created["key"].startswith("sapix_sk_") and len(created["key"]) == 9 + 64
    assert created["key_prefix"] == created["key"][:14]
    assert created["warning"]
    view = client.get(f"/v1/admin/api-keys/{created['key_id']}", headers=bearer(ROOT)).json()
    assert "key" not in view and "key_hash" not in view
    assert view["scopes"] == ["write:*"] and view["revoked"] is False
    listed = client.get("/v1/admin/api-keys", headers=bearer(ROOT)).json()["keys"]
    assert created["key"] not in str(listed)


def test_scopes_allow_and_deny(client: TestClient) -> None:
    key = make_key(client, scopes=["write:agents/orders/*", "read:agents/orders/query"])["key"]
    assert write(client, key, "orders").status_code == 200
    denied = write(client, key, "payments")
    assert denied.status_code == 403 and denied.json()["code"] == "FORBIDDEN"
    query = client.post("/v1/agents/orders/query", json={"type": "latest"}, headers=bearer(key))
    assert query.status_code == 200
    read = client.get("/v1/agents/orders/strand/records", headers=bearer(key))
    assert read.status_code == 403
    assert client.get("/v1/admin/api-keys", headers=bearer(key)).status_code == 403
    assert key not in denied.text  # keys are never echoed


def test_a_batch_write_needs_the_scope_of_a_single_write(client: TestClient) -> None:
    exact = make_key(client, scopes=["write:agents/orders/records/json"])["key"]
    glob = make_key(client, scopes=["write:agents/orders/*"])["key"]
    reader = make_key(client, scopes=["read:*"])["key"]
    body = {"items": [{"x": 1}, {"x": 2}]}
    for key in (exact, glob, ROOT):
        response = client.post("/v1/agents/orders/records/batch", json=body, headers=bearer(key))
        assert response.status_code == 200, response.text
    for key, agent in ((exact, "payments"), (glob, "payments"), (reader, "orders")):
        denied = client.post(f"/v1/agents/{agent}/records/batch", json=body, headers=bearer(key))
        assert denied.status_code == 403
        assert denied.json()["message"].endswith(f"write:agents/{agent}/records/json")
    transport = HTTPTransport("http://testserver", api_key=exact, client=client)
    with SapixClient(transport=transport) as db:
        assert len(db.collection("orders").write_batch([{"x": 3}, {"x": 4}])) == 2
        with pytest.raises(SapixError) as caught:
            db.collection("payments").write_batch([{"x": 5}])
        assert caught.value.status == 403


def test_revoked_and_expired_keys_are_401(client: TestClient) -> None:
    revoked = make_key(client, scopes=["write:*"])
    assert write(client, revoked["key"]).status_code == 200
    patched = client.patch(
        f"/v1/admin/api-keys/{revoked['key_id']}", json={"revoked": True}, headers=bearer(ROOT)
    )
    assert patched.json()["revoked"] is True
    assert write(client, revoked["key"]).status_code == 401
    expired = make_key(client, scopes=["write:*"], expires_at_ms=time.time_ns() // 10**6 - 1)
    response = write(client, expired["key"])
    assert response.status_code == 401 and response.json()["code"] == "KEY_EXPIRED"
    deleted = make_key(client, scopes=["write:*"])
    client.delete(f"/v1/admin/api-keys/{deleted['key_id']}", headers=bearer(ROOT))
    assert write(client, deleted["key"]).status_code == 401
    gone = client.get(f"/v1/admin/api-keys/{deleted['key_id']}", headers=bearer(ROOT))
    assert gone.status_code == 404


def test_patch_null_clears_a_field(client: TestClient) -> None:
    created = make_key(client, scopes=["write:*"], rate_limit_rps=5, caller_id="svc")
    path = f"/v1/admin/api-keys/{created['key_id']}"
    view = client.patch(
        path, json={"rate_limit_rps": None, "caller_id": None}, headers=bearer(ROOT)
    )
    assert view.json()["rate_limit_rps"] is None and view.json()["caller_id"] is None
    assert view.json()["scopes"] == ["write:*"]


def test_caller_header_must_match(client: TestClient) -> None:
    key = make_key(client, scopes=["write:*"], caller_id="billing")["key"]
    headers = {**bearer(key), "X-Sapix-Caller": "other"}
    response = client.post("/v1/agents/o/records/json", json={"data": 1}, headers=headers)
    assert response.status_code == 401
    headers["X-Sapix-Caller"] = "billing"
    assert client.post("/v1/agents/o/records/json", json={"data": 1}, headers=headers).is_success


def test_rate_limit_is_429_with_the_documented_message(client: TestClient) -> None:
    created = make_key(client, scopes=["write:*"], rate_limit_rps=3)
    responses = [write(client, created["key"]) for _ in range(12)]
    statuses = [r.status_code for r in responses]
    assert statuses[:3] == [200, 200, 200]  # the bucket starts full
    limited = next(r for r in responses if r.status_code == 429)
    assert "rate limit of 3 req/s" in limited.json()["message"]
    assert limited.json()["code"] == "RATE_LIMITED"
    usage = client.get(f"/v1/admin/api-keys/{created['key_id']}/usage", headers=bearer(ROOT))
    assert usage.json()["request_count_since_restart"] == statuses.count(200)
    assert usage.json()["last_used_at_ms"] is not None


def test_sdk_maps_401_403_and_429(client: TestClient) -> None:
    limited = make_key(client, scopes=["write:*", "read:*"], rate_limit_rps=2)["key"]
    transport = HTTPTransport("http://testserver", api_key=limited, client=client)
    db = SapixClient(transport=transport)
    with pytest.raises(SapixRateLimitError) as caught:
        for _ in range(20):
            db.collection("orders").write({"x": 1})
    assert caught.value.rps_limit == 2 and caught.value.status == 429
    no_key = SapixClient(transport=HTTPTransport("http://testserver", client=client))
    with pytest.raises(SapixError) as unauthorized:
        no_key.collection("orders").write({"x": 1})
    assert unauthorized.value.status == 401


def test_required_scopes() -> None:
    assert required_scope("POST", "/v1/agents/o/records/json") == ("write", "agents/o/records/json")
    assert required_scope("POST", "/v1/agents/o/query") == ("read", "agents/o/query")
    batch = required_scope("POST", "/v1/agents/o/records/batch")
    assert batch == ("write", "agents/o/records/json")  # a batch needs what one write needs
    assert required_scope("GET", "/v1/agents/o/records/batch") == ("read", "agents/o/records/batch")
    assert required_scope("GET", "/v1/blobs/abc") == ("read", "blobs")
    assert required_scope("PUT", "/v1/blobs") == ("write", "blobs")
    assert required_scope("GET", "/v1/admin/api-keys") == ("admin", "api-keys")
    assert scope_allows("admin:*", "write", "anything")
    assert scope_allows("admin:api-keys", "admin", "api-keys")
    assert not scope_allows("read:*", "write", "agents/o/records/json")
    assert not scope_allows("write:agents/orders/*", "write", "agents/ordersx/records/json")
